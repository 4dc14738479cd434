"""Stripe paging, the events feed, full line lists, and vetting records against the contract."""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dlt
import orjson
from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable

from ingestion.http import ApiClient, ApiRequestFailed, Cursors, SourceError
from ingestion.quarantine import quarantined
from ingestion.stripe.settings import API_VERSION, CREDENTIALS_HINT, LINE_CONTRACT, PAGE_LIMIT, EventRef, Table

logger = logging.getLogger("concord.ingestion")


class EventsExpired(Exception):
    """The last event seen is no longer listed (Stripe keeps events for 30 days)."""


def client(base_url: str, api_key: str) -> ApiClient:
    """An `ApiClient` for the Stripe API at `base_url` (without `/v1`), pinned to `API_VERSION`."""
    return ApiClient(
        system="stripe",
        base_url=base_url,
        headers={"Authorization": f"Bearer {api_key}", "Stripe-Version": API_VERSION},
        credentials_hint=CREDENTIALS_HINT,
    )


def get(api: ApiClient, path: str, params: Mapping[str, Any] | None = None) -> Any:
    """`api.get`, decoded with orjson (a page of 100 invoices is ~0.5 MB of JSON)."""
    return orjson.loads(api.request("GET", path, params=params).content)


def pages(api: ApiClient, path: str, params: Mapping[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
    """Every page of a Stripe list, newest first, following `starting_after`.

    Args:
        api: The Stripe client.
        path: A list endpoint such as `/v1/invoices`.
        params: Filters; `limit` defaults to the maximum.
    """
    query = {"limit": PAGE_LIMIT, **(params or {})}
    cursors = Cursors("stripe", f"GET {path}")
    while True:
        page = get(api, path, query)
        data = page["data"]
        yield data
        if not page.get("has_more") or not data:
            return
        cursor = next((_ref(item.get("id")) for item in reversed(data) if isinstance(item, Mapping)
                       and _ref(item.get("id"))), None)
        if cursor is None:
            raise SourceError(f"stripe: a page of {path} has no record with an id to continue after")
        cursors.follow(cursor)
        query["starting_after"] = cursor


def events_after(api: ApiClient, event_id: str) -> list[dict[str, Any]]:
    """Every event newer than `event_id`, oldest first.

    Lists are newest first, so walking forward in time means paging with `ending_before`
    (each page is the `limit` events just after the cursor, newest of them first).

    Raises:
        EventsExpired: `event_id` is no longer listed.
    """
    events: list[dict[str, Any]] = []
    cursor = event_id
    cursors = Cursors("stripe", "GET /v1/events")
    while True:
        try:
            page = get(api, "/v1/events", {"limit": PAGE_LIMIT, "ending_before": cursor})
        except ApiRequestFailed as exc:
            if exc.status in (400, 404) and _error_code(exc.body) == "resource_missing":
                raise EventsExpired(cursor) from exc
            raise
        data = page["data"]
        events.extend(reversed(data))
        if not page.get("has_more") or not data:
            return events
        cursor = data[0]["id"]
        cursors.follow(cursor)


def newest_event_id(api: ApiClient) -> str | None:
    """The id of the newest event, or None when the account has none in retention."""
    data = get(api, "/v1/events", {"limit": 1})["data"]
    return data[0]["id"] if data else None


def _error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, Mapping) else None
    return error.get("code") if isinstance(error, Mapping) else None


class EventFeed:
    """The events of one load, read once and shared by every resource of the source.

    Each resource keeps its own cursor, but in the usual case they are all equal, and reading
    the feed once per load instead of once per table is what keeps an idle run at a single
    request. Reads are cached per load id (a source object outlives its runs, e.g. in
    Dagster), so a later load never sees an earlier one's events.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._load_id: str | None = None
        self._high_water: dict[str, str | None] = {}
        self._chains: dict[tuple[str, str], list[dict[str, Any]] | EventsExpired] = {}

    def _scope(self) -> str | None:
        """The current load id; resets the cache when a new load starts."""
        try:
            load_id = dlt.current.load_package_state()["load_id"]
        except CurrentLoadPackageStateNotAvailable:  # iterated outside a pipeline: nothing to share
            load_id = None
        if load_id != self._load_id:
            self._load_id = load_id
            self._high_water.clear()
            self._chains.clear()
        return load_id

    def high_water(self, api: ApiClient) -> str | None:
        """The newest event id, noted once per load before any table is backfilled."""
        with self._lock:
            if self._scope() is None or api.base_url not in self._high_water:
                self._high_water[api.base_url] = newest_event_id(api)
            return self._high_water[api.base_url]

    def since(self, api: ApiClient, event_id: str) -> list[dict[str, Any]]:
        """Events after `event_id`, oldest first, from a read already made in this load
        when one covers it.

        Raises:
            EventsExpired: `event_id` is no longer listed.
        """
        with self._lock:
            scoped = self._scope() is not None
            key = (api.base_url, event_id)
            if scoped and key in self._chains:
                return _unwrap(self._chains[key])
            if scoped:
                for (base_url, _), chain in self._chains.items():
                    if base_url == api.base_url and not isinstance(chain, EventsExpired):
                        ids = [event["id"] for event in chain]
                        if event_id in ids:
                            return chain[ids.index(event_id) + 1:]
            try:
                result: list[dict[str, Any]] | EventsExpired = events_after(api, event_id)
            except EventsExpired as exc:
                result = exc
            if scoped:
                self._chains[key] = result
            return _unwrap(result)


def _unwrap(result: list[dict[str, Any]] | EventsExpired) -> list[dict[str, Any]]:
    if isinstance(result, EventsExpired):
        raise result
    return result


def _ref(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def named_ids(events: Iterable[Mapping[str, Any]], refs: Iterable[EventRef]) -> list[str]:
    """Ids of the objects `refs` pick out of `events`, deduplicated, in event order."""
    refs = tuple(refs)
    out: dict[str, None] = {}
    for event in events:
        obj = (event.get("data") or {}).get("object") or {}
        for ref in refs:
            if not fnmatch.fnmatchcase(event.get("type", ""), ref.pattern):
                continue
            if ref.object is not None and obj.get("object") != ref.object:
                continue
            object_id = _ref(obj.get(ref.field))
            if object_id:  # `invoice.upcoming` previews carry no id
                out[object_id] = None
    return list(out)


def retrieve(api: ApiClient, path: str, object_id: str) -> dict[str, Any] | None:
    """The object's current state, or None if it is gone (deleted customers and drafts)."""
    try:
        doc = get(api, f"{path}/{object_id}")
    except ApiRequestFailed as exc:
        if exc.status == 404:
            logger.info("stripe: %s/%s no longer exists; skipped", path, object_id)
            return None
        raise
    if doc.get("deleted"):
        logger.info("stripe: %s/%s was deleted; skipped", path, object_id)
        return None
    return doc


def complete_lines(api: ApiClient, path: str, doc: dict[str, Any]) -> None:
    """Replace the embedded list object `lines` (the first ten lines) with the list of all
    lines, fetching the rest from its `url` when it has more."""
    embedded = doc.get("lines")
    if not isinstance(embedded, Mapping):
        return
    lines = list(embedded.get("data") or [])
    last_id = _ref(lines[-1].get("id")) if lines and isinstance(lines[-1], Mapping) else None
    if embedded.get("has_more") and last_id:  # without an id to page from, the line contract refuses it
        url = embedded.get("url") or f"{path}/{doc['id']}/lines"
        for page in pages(api, url, {"starting_after": last_id}):
            lines.extend(page)
    doc["lines"] = lines


def _line_violation(doc: Mapping[str, Any]) -> str | None:
    lines = doc.get("lines")
    if not isinstance(lines, list):
        return "lines is not a list"
    for i, line in enumerate(lines):
        reason = LINE_CONTRACT.violation(line)
        if reason is not None:
            return f"lines[{i}]: {reason}"
    return None


def _without_nulls(record: Mapping[str, Any], keep: Iterable[str] = ()) -> dict[str, Any]:
    """`record` without null values, also inside the objects dlt flattens into columns
    (those in `keep` are landed as JSON and stay as they are)."""
    keep = set(keep)
    out: dict[str, Any] = {}
    for key, value in record.items():
        if value is None:
            continue
        if type(value) is dict and key not in keep:  # `type is`: this runs per field of every record
            value = {k: v for k, v in value.items() if v is not None}
        out[key] = value
    return out


def compact(doc: Mapping[str, Any], table: Table) -> dict[str, Any]:
    """The record as landed: null fields left out (a column nobody has set yet is not worth
    a column, nor a warning from dlt on every load; the ones dbt relies on are declared in
    `Table.columns` and exist regardless), lines included."""
    out = _without_nulls(doc, table.json_columns)
    if table.has_lines:
        out["lines"] = [_without_nulls(line, ("period", "price", "metadata")) for line in doc["lines"]]
    return out


def vet(api: ApiClient, table: Table, docs: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    """(records to land, quarantine rows): each record checked against its table's
    contract; for tables with lines, the lines completed and checked as well."""
    good: list[dict[str, Any]] = []
    bad: list[Any] = []
    for doc in docs:
        reason = table.contract.violation(doc)
        if reason is None and table.has_lines:
            complete_lines(api, table.path, doc)
            reason = _line_violation(doc)
        if reason is None:
            good.append(compact(doc, table))
        else:
            bad.append(quarantined(table.name, doc, reason))
    return good, bad
