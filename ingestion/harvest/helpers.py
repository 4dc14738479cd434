"""Harvest paging, the updated_since cursor, and pages turned into Arrow tables."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Iterator, Mapping

import orjson
import pyarrow as pa

from ingestion.harvest.settings import PER_PAGE
from ingestion.http import ApiClient


def walk(client: ApiClient, resource: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Every page of a list, following `links.next` verbatim (Harvest's cursor links)."""
    page = client.get(f"/{resource}", params=params)
    while True:
        yield page[resource]
        next_url = (page.get("links") or {}).get("next")
        if not next_url:
            return
        page = client.get(next_url)


def to_arrow(records: list[dict[str, Any]], types: Mapping[str, pa.DataType]) -> pa.Table:
    """A page as an Arrow table, built in C: nested objects become `parent__child` columns
    (dlt's naming), declared columns get their declared types (timestamps and dates parsed),
    all-null undeclared columns become text, and `id` is the non-nullable primary key."""
    table = pa.Table.from_pylist(records)
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    arrays, fields = [], []
    for name, array in zip(table.column_names, table.columns):
        name = name.replace(".", "__")
        wanted = types.get(name)
        if wanted is not None and array.type != wanted:
            array = array.cast(pa.string()).cast(wanted) if pa.types.is_null(array.type) else array.cast(wanted)
        elif wanted is None and pa.types.is_null(array.type):
            array = array.cast(pa.string())
        arrays.append(array)
        fields.append(pa.field(name, array.type, nullable=name != "id"))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def spent_day(value: Any) -> dt.date | None:
    """A time entry's spent date, None where it is no date (such a record is quarantined)."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def newest_spent_date(client: ApiClient) -> dt.date | None:
    """The latest spent date of the time entries: Harvest lists them newest spent date first."""
    entries = client.get("/time_entries", params={"per_page": 100})["time_entries"]
    return next((day for day in map(spent_day, (e.get("spent_date") for e in entries)) if day), None)


def presence(client: ApiClient, swept_from: dt.date) -> pa.Table:
    """Which time entries exist with a spent date from `swept_from` on: their ids and spent
    dates, and the sweep's first day."""
    rows: list[tuple[int, str]] = []
    for page in walk(client, "time_entries", {"per_page": PER_PAGE, "from": swept_from.isoformat()}):
        rows += [(record["id"], record["spent_date"]) for record in page
                 if isinstance(record.get("id"), int) and spent_day(record.get("spent_date"))]
    ids, days = zip(*rows) if rows else ((), ())
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "spent_date": pa.array(days, pa.string()).cast(pa.date32()),
        "swept_from": pa.array([swept_from] * len(ids), pa.date32()),
    })


def parse_stamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(record: Mapping[str, Any]) -> str:
    return hashlib.blake2b(orjson.dumps(record, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


class UpdatedSinceCursor:
    """The `updated_since` a run asks for, and which records it has already landed.

    Each run re-reads from `lookback` before the newest stamp it saw, because records that
    change while a walk is under way can carry stamps below the walk's newest and sit on pages
    already passed. Records re-read unchanged (same content fingerprint) are skipped, so an
    unchanged source lands nothing. Only records inside that window are fingerprinted.

    Stamps are compared as Harvest's ISO 8601 'Z' strings, which sort like the instants.
    """

    def __init__(self, state: dict[str, Any], lookback_s: int):
        self.state = state
        self.lookback = dt.timedelta(seconds=lookback_s)
        self.previous: str | None = state.get("newest")
        self.known: dict[str, str] = dict(state.get("recent", {}))  # fingerprint -> updated_at
        self.latest = self.previous
        self._horizon = self._minus_lookback(self.previous) if self.previous else ""
        self.candidates: list[tuple[str, dict[str, Any]]] = []  # may sit in the next look-back

    @property
    def updated_since(self) -> str | None:
        return self._minus_lookback(self.previous) if self.previous else None

    def _minus_lookback(self, stamp: str) -> str:
        return iso(parse_stamp(stamp) - self.lookback)

    def is_new(self, record: dict[str, Any]) -> bool:
        """Whether `record` differs from what earlier runs landed."""
        stamp = record["updated_at"]
        if self.latest is None or stamp > self.latest:
            self.latest = stamp
            self._horizon = self._minus_lookback(stamp)
        if stamp >= self._horizon:
            self.candidates.append((stamp, record))
        if self.previous is not None and stamp <= self.previous:
            return fingerprint(record) not in self.known
        return True

    def save(self) -> None:
        """Keep the newest stamp and the fingerprints the next run's look-back will meet."""
        if self.latest is None:
            return
        horizon = self._minus_lookback(self.latest)
        recent = {key: stamp for key, stamp in self.known.items() if stamp >= horizon}
        recent.update({fingerprint(record): stamp for stamp, record in self.candidates if stamp >= horizon})
        self.state["newest"] = self.latest
        self.state["recent"] = recent
