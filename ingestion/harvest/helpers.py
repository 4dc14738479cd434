"""Harvest paging, the updated_since cursor, and pages turned into Arrow tables."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Iterator, Mapping

import orjson
import pyarrow as pa

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


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects become `parent__child` columns (dlt's naming); lists become JSON text."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}__"))
        elif isinstance(value, list):
            flat[name] = orjson.dumps(value).decode()
        else:
            flat[name] = value
    return flat


def to_arrow(records: list[Mapping[str, Any]], types: Mapping[str, pa.DataType]) -> pa.Table:
    """A page as an Arrow table: declared columns get their declared types, the rest are
    inferred (text when a page holds only nulls); `id` is the non-nullable primary key."""
    rows = [flatten(r) for r in records]
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    arrays, fields = [], []
    for name in names:
        values = [row.get(name) for row in rows]
        wanted = types.get(name)
        if wanted is None:
            array = pa.array(values)
            if pa.types.is_null(array.type):
                array = array.cast(pa.string())
        elif pa.types.is_timestamp(wanted) or pa.types.is_date(wanted):
            array = pa.array(values, pa.string()).cast(wanted)
        else:
            array = pa.array(values, wanted)
        arrays.append(array)
        fields.append(pa.field(name, array.type, nullable=name != "id"))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def parse_stamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(record: Mapping[str, Any]) -> str:
    return hashlib.blake2b(orjson.dumps(record, option=orjson.OPT_SORT_KEYS), digest_size=12).hexdigest()


class UpdatedSinceCursor:
    """The `updated_since` a run asks for, and which records it has already landed.

    Each run re-reads from `LOOKBACK` before the newest stamp it saw, because records that
    change while a walk is under way can carry stamps below the walk's newest and sit on pages
    already passed. Records re-read unchanged (same content fingerprint) are skipped, so an
    unchanged source lands nothing.
    """

    def __init__(self, state: dict[str, Any], lookback_s: int):
        self.state = state
        self.lookback = dt.timedelta(seconds=lookback_s)
        self.seen: dict[str, str] = dict(state.get("recent", {}))  # fingerprint -> updated_at
        self.newest: dt.datetime | None = parse_stamp(state["newest"]) if state.get("newest") else None
        self._latest = self.newest

    @property
    def updated_since(self) -> str | None:
        return iso(self.newest - self.lookback) if self.newest else None

    def is_new(self, record: Mapping[str, Any]) -> bool:
        """Whether `record` differs from what was landed; remembers it either way."""
        stamp = parse_stamp(record["updated_at"])
        if self._latest is None or stamp > self._latest:
            self._latest = stamp
        key = fingerprint(record)
        if key in self.seen:
            return False
        self.seen[key] = record["updated_at"]
        return True

    def save(self) -> None:
        """Keep the newest stamp and the fingerprints still inside the next run's look-back."""
        if self._latest is None:
            return
        horizon = self._latest - self.lookback
        self.state["newest"] = iso(self._latest)
        self.state["recent"] = {key: stamp for key, stamp in self.seen.items() if parse_stamp(stamp) >= horizon}
