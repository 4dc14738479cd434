"""Harvest paging, the updated_since cursor, pages turned into Arrow tables, and the deletion sweep."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Iterator, Mapping

import orjson
import pyarrow as pa

from ingestion.harvest.settings import PER_PAGE
from ingestion.http import ApiClient, Cursors


def walk(client: ApiClient, resource: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
    """Every page of a list, following `links.next` verbatim (Harvest's cursor links)."""
    page = client.get(f"/{resource}", params=params)
    cursors = Cursors("harvest", f"GET /{resource}")
    while True:
        yield page[resource]
        next_url = (page.get("links") or {}).get("next")
        if not next_url:
            return
        cursors.follow(next_url)
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


PRESENCE_SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("spent_date", pa.date32()),
                             pa.field("swept_from", pa.date32())])


def spent_day(value: Any) -> dt.date | None:
    """A time entry's spent date, None where it is no date (such a record is quarantined)."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def sweep_start(newest_updated_at: str | None, window_days: int) -> dt.date | None:
    """The first spent date the deletion sweep lists: `window_days` before the day of the newest
    `updated_at` the time entries' cursor has seen. That stamp is Harvest's own clock, which a
    machine's clock need not agree with (the sandbox's runs ahead of it). None (no sweep) when
    nothing has been seen yet or the window is 0 or less."""
    if not newest_updated_at or window_days <= 0:
        return None
    return parse_stamp(newest_updated_at).date() - dt.timedelta(days=window_days)


def presence(client: ApiClient, swept_from: dt.date) -> Iterator[pa.Table]:
    """Which time entries exist with a spent date from `swept_from` on (Harvest's `from`): per
    page, an Arrow table of their ids and spent dates and the sweep's first day. Only those two
    fields of each record are read; a page with none (or only broken records) yields nothing."""
    for page in walk(client, "time_entries", {"per_page": PER_PAGE, "from": swept_from.isoformat()}):
        rows = [(record["id"], day) for record in page
                if isinstance(record.get("id"), int) and not isinstance(record["id"], bool)
                and (day := spent_day(record.get("spent_date"))) is not None]
        if not rows:
            continue
        ids, days = zip(*rows)
        yield pa.Table.from_arrays(
            [pa.array(ids, pa.int64()), pa.array(days, pa.date32()), pa.array([swept_from] * len(ids), pa.date32())],
            schema=PRESENCE_SCHEMA)


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
