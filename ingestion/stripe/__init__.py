"""Stripe (billing): customers, invoices with their lines, charges, credit notes, disputes.

The first run of a table notes the newest event (the high-water mark) and then backfills the
table from its list, newest first. Later runs follow `/v1/events` from the last event seen,
collect the objects those events name, and re-read each one, so changes after creation
(paid, voided, disputed, credited) land with the object's current state. A customer deleted
since lands as its deletion event shows it, with `deleted = true`: its invoices still name it.
Stripe keeps events for 30 days; a cursor older than that makes the table backfill in full
again.

Nested objects keep dlt's normaliser with `max_table_nesting=1`: top-level objects become
`parent__child` columns (`status_transitions__paid_at`), the lines of an invoice or credit
note become the child tables `invoices__lines` and `credit_notes__lines` (replaced per parent
on merge), and anything deeper (a line's `price` and `period`, a charge's
`payment_method_details.<rail>`) stays one JSON column instead of dozens of tables.
`metadata` and the rarely filled top-level lists are JSON columns too, so free-form keys do
not widen the tables. Null fields are left out of the landed record; the columns dbt relies
on are declared (`settings.Table.columns`) and exist before any value arrives.

Settings (dlt conventions): `SOURCES__STRIPE__BASE_URL` (`https://api.stripe.com` or the
sandbox) and `SOURCES__STRIPE__API_KEY`. Resource state: `last_event_id` per table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dlt
from dlt.extract.resource import DltResource

from ingestion.http import ApiClient
from ingestion.stripe.helpers import EventFeed, EventsExpired, client, named_ids, pages, retrieve, vet
from ingestion.stripe.settings import PAGE_LIMIT, TABLES, Table

logger = logging.getLogger("concord.ingestion")

CURSOR = "last_event_id"  # resource state: the newest event this table has taken into account
MAX_TABLE_NESTING = 1


def _land(api: ApiClient, table: Table, docs: Iterable[dict[str, Any]], seen: set[str]) -> Iterator[Any]:
    """Vet `docs` and yield the good ones not already landed by this run, then the quarantine rows."""
    good, bad = vet(api, table, docs)
    good = [doc for doc in good if doc["id"] not in seen]
    seen.update(doc["id"] for doc in good)
    if good:
        yield good
    yield from bad


def _backfill(api: ApiClient, table: Table, feed: EventFeed, state: dict[str, Any]) -> Iterator[Any]:
    high_water = feed.high_water(api)  # before listing: later changes are then followed next run
    seen: set[str] = set()
    for page in pages(api, table.path):
        yield from _land(api, table, page, seen)
    state[CURSOR] = high_water
    if high_water is None:
        logger.info("stripe: %s: the account has no events yet; the next run backfills again", table.name)


def _deletions(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Object id -> the object as its `*.deleted` event shows it, marked `deleted`."""
    out = {}
    for event in events:
        obj = (event.get("data") or {}).get("object")
        if str(event.get("type", "")).endswith(".deleted") and isinstance(obj, dict) and isinstance(obj.get("id"), str):
            out[obj["id"]] = {**obj, "deleted": True}
    return out


def _follow(api: ApiClient, table: Table, events: list[dict[str, Any]], state: dict[str, Any]) -> Iterator[Any]:
    ids = named_ids(events, table.follows)
    logger.info("stripe: %s: %d events since the last run name %d objects", table.name, len(events), len(ids))
    deleted = _deletions(events) if table.keeps_deleted else {}
    seen: set[str] = set()
    for start in range(0, len(ids), PAGE_LIMIT):
        docs = ((retrieve(api, table.path, object_id) or deleted.get(object_id))
                for object_id in ids[start:start + PAGE_LIMIT])
        yield from _land(api, table, [doc for doc in docs if doc is not None], seen)
    if events:
        state[CURSOR] = events[-1]["id"]


def _resource(table: Table, feed: EventFeed) -> DltResource:
    def read(base_url: str = dlt.config.value, api_key: str = dlt.secrets.value) -> Iterator[Any]:
        api = client(base_url, api_key)
        state = dlt.current.resource_state()
        cursor = state.get(CURSOR)
        if cursor:
            try:
                events = feed.since(api, cursor)
            except EventsExpired:
                logger.warning("stripe: %s: the last event seen (%s) is past Stripe's 30-day event retention; "
                               "backfilling the table in full", table.name, cursor)
            else:
                yield from _follow(api, table, events, state)
                return
        else:
            logger.info("stripe: %s: first run; backfilling from %s", table.name, table.path)
        yield from _backfill(api, table, feed, state)

    read.__doc__ = f"Stripe {table.name}: backfilled once, then the objects that events since the last run name."
    return dlt.resource(
        read, name=table.name, primary_key="id", write_disposition="merge", max_table_nesting=MAX_TABLE_NESTING,
        columns=_columns(table.columns, table.json_columns),
        nested_hints={"lines": {"columns": _columns(table.line_columns, ())}} if table.has_lines else None,
    )


def _columns(types: Mapping[str, str], json_columns: Iterable[str]) -> dict[str, Any]:
    """dlt column hints: the declared types, then the JSON columns; only `id` is required."""
    columns = {name: {"name": name, "data_type": kind, "nullable": name != "id"} for name, kind in types.items()}
    columns.update({name: {"name": name, "data_type": "json", "nullable": True} for name in json_columns})
    return columns


@dlt.source(name="stripe", section="stripe", max_table_nesting=MAX_TABLE_NESTING)
def source() -> list[DltResource]:
    """Every Stripe table as a resource; `base_url` and `api_key` resolve when a load runs.

    Returns:
        The resources `customers`, `invoices`, `charges`, `credit_notes` and `disputes`,
        merged on `id`, sharing one read of the events feed per load.
    """
    feed = EventFeed()
    return [_resource(table, feed) for table in TABLES]
