"""The schema contract each landed record must keep, and the quarantine for those that don't.

A record that breaks its table's contract (no id, a field of the wrong type, an unknown
currency, a date that does not parse) is not loaded into that table and does not stop the
load: it goes to the dataset's `quarantine` table with its raw JSON, the reason and, through
dlt, the load id. The same bad record quarantined again on a later run is merged, not
duplicated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import dlt
import orjson
import pyarrow as pa

QUARANTINE_TABLE = "quarantine"

# ISO 4217 codes a professional-services firm bills or is paid in; anything else is a data error.
CURRENCIES = frozenset({
    "USD", "GBP", "EUR", "CHF", "CAD", "AUD", "NZD", "JPY", "SEK", "NOK", "DKK", "PLN", "CZK",
    "HUF", "SGD", "HKD", "INR", "ZAR", "BRL", "MXN", "AED", "SAR", "ILS", "CNY", "KRW",
})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) or _numeric_string(value)


def _numeric_string(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_iso_datetime(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "id": (lambda v: (_is_int(v) or (isinstance(v, str) and v != "")), "an id"),
    "int": (_is_int, "an integer"),
    "number": (_is_number, "a number"),
    "string": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "epoch": (_is_int, "a unix timestamp"),
    "datetime": (_is_iso_datetime, "an ISO 8601 date-time"),
    "date": (_is_date, "a YYYY-MM-DD date"),
    "currency": (lambda v: isinstance(v, str) and v.upper() in CURRENCIES, "a known ISO 4217 currency"),
}


@dataclass(frozen=True)
class Contract:
    """Fields a table's records must carry (`required`) or may carry as null (`optional`),
    each with the kind of value it must hold (a key of `CHECKS`). Paths use dots for nesting."""

    table: str
    required: Mapping[str, str]
    optional: Mapping[str, str] = None  # type: ignore[assignment]

    def violation(self, record: Mapping[str, Any]) -> str | None:
        """Why the record breaks the contract, or None if it keeps it."""
        if not isinstance(record, dict):
            return f"expected an object, got {type(record).__name__}"
        for path, kind in self.required.items():
            value = _lookup(record, path)
            if value is None:
                return f"missing {path}"
            check, wanted = CHECKS[kind]
            if not check(value):
                return f"{path} is not {wanted}: {_show(value)}"
        for path, kind in (self.optional or {}).items():
            value = _lookup(record, path)
            if value is None:
                continue
            check, wanted = CHECKS[kind]
            if not check(value):
                return f"{path} is not {wanted}: {_show(value)}"
        return None


def _lookup(record: dict[str, Any], path: str) -> Any:
    if "." not in path:
        return record.get(path)
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict):  # dict, not Mapping: this runs millions of times
            return None
        value = value.get(part)
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


QUARANTINE_SCHEMA = pa.schema([
    pa.field("quarantine_key", pa.string(), nullable=False),
    pa.field("source_table", pa.string()),
    pa.field("record_id", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("raw_record", pa.string()),
    pa.field("quarantined_at", pa.timestamp("us", tz="UTC")),
])


def _mark(item: Any) -> Any:
    """Send `item` to the quarantine table, with that table's own hints (a table variant: the
    resource's hints for its main table stay as they are)."""
    # `columns={}`: a variant starts from a copy of the resource's hints, and the main table's
    # declared columns (a non-nullable `id`, typed amounts) must not become the quarantine's.
    hints = dlt.mark.make_hints(table_name=QUARANTINE_TABLE, write_disposition="merge",
                                primary_key="quarantine_key", columns={})
    return dlt.mark.with_hints(item, hints, create_table_variant=True)


def quarantine_row(table: str, record: Any, reason: str) -> dict[str, Any]:
    """The quarantine row for `record`: keyed by its content, so quarantining it again merges."""
    raw = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str).decode()
    record_id = record.get("id") if isinstance(record, Mapping) else None
    return {
        "quarantine_key": hashlib.sha256(f"{table}\x1f{raw}".encode()).hexdigest()[:32],
        "source_table": table,
        "record_id": None if record_id is None else str(record_id),
        "reason": reason,
        "raw_record": raw,
        "quarantined_at": dt.datetime.now(dt.timezone.utc),
    }


def quarantined(table: str, record: Any, reason: str) -> Any:
    """A quarantine row for `record`, marked for the dataset's quarantine table."""
    return _mark(quarantine_row(table, record, reason))


def split(contract: Contract, records: Iterable[Mapping[str, Any]]) -> tuple[list[Any], list[Any]]:
    """(records that keep the contract, quarantine rows for those that don't)."""
    good, bad = [], []
    for record in records:
        reason = contract.violation(record)
        if reason is None:
            good.append(record)
        else:
            bad.append(quarantined(contract.table, record, reason))
    return good, bad


def split_arrow(contract: Contract, records: Iterable[Mapping[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Like `split`, with the quarantine rows as one Arrow table: a resource that yields Arrow
    must send Arrow to every table it writes."""
    good, bad = [], []
    for record in records:
        reason = contract.violation(record)
        if reason is None:
            good.append(record)
        else:
            bad.append(quarantine_row(contract.table, record, reason))
    if not bad:
        return good, []
    return good, [_mark(pa.Table.from_pylist(bad, schema=QUARANTINE_SCHEMA))]
