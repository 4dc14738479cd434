"""The HubSpot CRM source: companies, contacts and deals (with their company associations) and the
definitions of their properties, landed in `raw_hubspot`.

The first run lists every record, live and archived. Later runs read only what changed since the
cursor through the search API, plus the archived list to see what was archived since. Cursors live
in each resource's dlt state (not `dlt.sources.incremental`, which would also filter the quarantine
rows the resources yield):

- `cursor_ms`: epoch ms up to which modifications have been read. After a first run it is the
  newest modification time seen *before* listing began, so records changed during the walk are
  read again next time.
- `recent`: `{id: changed ms}` of records landed within `SEARCH_LOOKBACK_MS` of the cursor, so the
  overlap each search re-reads (records at the cursor, and HubSpot's search-index lag) lands nothing
  twice.
- `definitions` (the `properties` resource): `{object_type: {name: hash}}`, so unchanged
  definitions are not landed again.

Settings follow dlt's conventions, resolved when a load runs (not when the source is created):
`SOURCES__HUBSPOT__BASE_URL`, `SOURCES__HUBSPOT__ACCESS_TOKEN`.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Generator, Iterator, Sequence

import dlt
import orjson
from dlt.common.storages.load_package import CurrentLoadPackageStateNotAvailable
from dlt.extract.resource import DltResource

from ingestion.http import ApiClient
from ingestion.hubspot import helpers, settings
from ingestion.quarantine import quarantined, split

__all__ = ["companies", "contacts", "deals", "properties", "source"]


class _DefinitionCache:
    """Property definitions read once per load and shared by the resources that need them (every
    object resource asks for its type's property names, and `properties` lands them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._load_id: str | None = None
        self._entries: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def get(self, client: ApiClient, object_type: str) -> list[dict[str, Any]]:
        try:
            load_id = dlt.current.load_package_state()["load_id"]
        except CurrentLoadPackageStateNotAvailable:
            load_id = None
        with self._lock:
            if load_id is None or load_id != self._load_id:
                self._load_id, self._entries = load_id, {}
            key = (client.base_url, object_type)
            if key not in self._entries:
                self._entries[key] = helpers.property_definitions(client, object_type)
            return self._entries[key]


_definitions = _DefinitionCache()

# Column hints go on the table variant the rows are marked with (`_table_hints`), not on the
# resource: the quarantine table, a variant of the same resource, would inherit them.
_OBJECT_HINTS: dict[str, Any] = {"write_disposition": "merge", "primary_key": "id", "section": "hubspot"}


@dlt.resource(name="companies", **_OBJECT_HINTS)
def companies(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value) -> Iterator[Any]:
    """HubSpot companies: one row per company, live and archived."""
    yield from _sync("companies", base_url, access_token)


@dlt.resource(name="contacts", **_OBJECT_HINTS)
def contacts(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value) -> Iterator[Any]:
    """HubSpot contacts, each with its company associations (child table `contacts__associations`)."""
    yield from _sync("contacts", base_url, access_token)


@dlt.resource(name="deals", **_OBJECT_HINTS)
def deals(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value) -> Iterator[Any]:
    """HubSpot deals, each with its company associations (child table `deals__associations`)."""
    yield from _sync("deals", base_url, access_token)


@dlt.resource(name="properties", write_disposition="merge", primary_key=("object_type", "name"),
              section="hubspot")
def properties(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value) -> Iterator[Any]:
    """Property definitions of companies, contacts and deals, keyed by object type and name.

    Only definitions that are new or changed since the last run are landed; a property that left
    the live list is landed again from the archived definitions, with `archived = true`.
    """
    client = helpers.make_client(base_url, access_token)
    state = dlt.current.resource_state()
    known: dict[str, dict[str, str]] = state.get("definitions") or {}
    updated: dict[str, dict[str, str]] = {}
    for object_type in settings.OBJECT_TYPES:
        live = _definitions.get(client, object_type)
        before = known.get(object_type) or {}
        digests = {str(d.get("name")): _digest(d) for d in live}
        rows = [{"object_type": object_type, **d} for d in live
                if before.get(str(d.get("name"))) != digests[str(d.get("name"))]]
        gone = set(before) - set(digests)
        if gone:
            archived = helpers.property_definitions(client, object_type, archived=True)
            rows += [{"object_type": object_type, **d} for d in archived if d.get("name") in gone]
        good, bad = split(settings.PROPERTIES_CONTRACT, rows)
        yield from bad
        if good:
            yield good
        updated[object_type] = digests
    state["definitions"] = updated


@dlt.source(name="hubspot")
def source() -> Sequence[DltResource]:
    """The HubSpot CRM: `companies`, `contacts`, `deals` and `properties`.

    Creating the source needs no settings; `SOURCES__HUBSPOT__BASE_URL` and
    `SOURCES__HUBSPOT__ACCESS_TOKEN` are resolved when a load runs. Property values land as the
    strings HubSpot sends (typing them is dbt's job), so dlt's timestamp detection is turned off.
    """
    dlt.current.source_schema().remove_type_detection("iso_timestamp")
    return [companies, contacts, deals, properties]


def _digest(definition: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(definition, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _table_hints(object_type: str, definitions: list[dict[str, Any]]) -> Any:
    """Hints of an object table: the record columns, every defined property as text (so a property
    no record has set yet still gets its column), and the associations child table's columns."""
    columns: dict[str, dict[str, Any]] = dict(settings.RECORD_COLUMNS)
    for name in sorted(str(d["name"]) for d in definitions if d.get("name")):
        columns[f"property_{name}" if name in settings.RESERVED_NAMES else name] = {"data_type": "text"}
    nested = None
    if object_type in settings.ASSOCIATED:
        nested = {"associations": dlt.mark.make_nested_hints(columns=settings.ASSOCIATION_COLUMNS)}
    return dlt.mark.make_hints(table_name=object_type, write_disposition="merge", primary_key="id",
                               columns=columns, nested_hints=nested)


class _Landing:
    """What one run of an object resource has seen: drives the next cursor and the dedupe set."""

    def __init__(self, object_type: str, definitions: list[dict[str, Any]], client: ApiClient):
        self.object_type = object_type
        self.contract = settings.record_contract(object_type, definitions)
        self.hints = _table_hints(object_type, definitions)
        self.client = client
        self.associated = settings.ASSOCIATED.get(object_type)
        self.landed: dict[str, int] = {}
        self.hinted = False

    def rows(self, records: list[dict[str, Any]], *, embedded: bool) -> Iterator[Any]:
        """Quarantine rows for records that break the contract, then landed rows for the rest."""
        good, bad = [], []
        for record in records:
            reason = self.contract.violation(helpers.without_blanks(record))
            if reason is None:
                good.append(record)
            else:
                bad.append(quarantined(self.object_type, record, reason))
            ms = helpers.changed_ms(record)
            if ms is not None and record.get("id"):
                self.landed[str(record["id"])] = ms
        yield from bad
        if good:
            rows = [helpers.to_row(r, a) for r, a in zip(good, self._associations(good, embedded=embedded))]
            if self.hinted:
                yield dlt.mark.with_table_name(rows, self.object_type)
            else:
                # Hints once per run: each with_hints makes dlt recompute the table's schema.
                self.hinted = True
                yield dlt.mark.with_hints(rows, self.hints, create_table_variant=True)

    def _associations(self, records: list[dict[str, Any]], *, embedded: bool) -> list[Any]:
        if not self.associated:
            return [None] * len(records)
        rows = [helpers.embedded_associations(r, self.associated) if embedded else None for r in records]
        missing = [str(r["id"]) for r, a in zip(records, rows) if a is None]
        if missing:
            read = helpers.read_associations(self.client, self.object_type, self.associated, missing)
            rows = [read[str(r["id"])] if a is None else a for r, a in zip(records, rows)]
        return rows


def _sync(object_type: str, base_url: str, access_token: str) -> Iterator[Any]:
    """Land what changed in one object type since its cursor (everything on a first run), then
    move the cursor; state is only written once the whole walk has succeeded."""
    client = helpers.make_client(base_url, access_token)
    state = dlt.current.resource_state()
    definitions = _definitions.get(client, object_type)
    names = sorted({str(d["name"]) for d in definitions if d.get("name")})
    landing = _Landing(object_type, definitions, client)
    cursor: int | None = state.get("cursor_ms")
    recent: dict[str, int] = dict(state.get("recent") or {})
    if cursor is None:
        new_cursor = yield from _list_everything(client, object_type, names, landing)
    else:
        new_cursor = yield from _read_changes(client, object_type, names, landing, cursor, recent)
    floor = new_cursor - settings.SEARCH_LOOKBACK_MS
    recent.update(landing.landed)
    state["cursor_ms"] = new_cursor
    state["recent"] = {i: ms for i, ms in recent.items() if ms >= floor}


def _list_everything(client: ApiClient, object_type: str, names: list[str],
                     landing: _Landing) -> Generator[Any, None, int]:
    """First run: every live and archived record. Returns the cursor: the newest modification
    time as it was before the walk began, so whatever changes during the walk is read next time."""
    high_water_mark = helpers.high_water_mark(client, object_type) or 0
    for archived in (False, True):
        for page in helpers.list_objects(client, object_type, names, associations=landing.associated,
                                         archived=archived):
            yield from landing.rows(page, embedded=True)
    return high_water_mark


def _read_changes(client: ApiClient, object_type: str, names: list[str], landing: _Landing,
                  cursor: int, recent: dict[str, int]) -> Generator[Any, None, int]:
    """Later runs: live records modified since the cursor (search), then records archived since
    it (the archived list; search never shows them). Returns the newest modification time seen
    by the search, which every later write, archivals included, will be stamped after."""
    since = max(0, cursor - settings.SEARCH_LOOKBACK_MS)
    new_cursor = cursor
    batch: list[dict[str, Any]] = []
    for page in helpers.search_modified_since(client, object_type, since, names):
        for record in page:
            ms = helpers.changed_ms(record)
            if ms is not None:
                new_cursor = max(new_cursor, ms)
            if recent.get(str(record.get("id"))) != ms:
                batch.append(record)
        if len(batch) > settings.ASSOCIATIONS_BATCH - settings.SEARCH_LIMIT:
            yield from landing.rows(batch, embedded=False)
            batch = []
    if batch:
        yield from landing.rows(batch, embedded=False)
    for page in helpers.list_objects(client, object_type, names, associations=landing.associated,
                                     archived=True):
        newly = [r for r in page if (ms := helpers.changed_ms(r)) is not None and ms >= since
                 and recent.get(str(r.get("id"))) != ms]
        if newly:
            yield from landing.rows(newly, embedded=True)
    return new_cursor
