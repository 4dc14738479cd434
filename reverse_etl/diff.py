"""What a push must send: the sync model compared with what the CRM last confirmed.

A record is sent when one of its mapped values differs from the value the CRM last accepted
(or was never accepted). Only the differing properties go, as absolute values — a balance that
drops to 0 is sent as "0", a cleared date as "" — plus the metadata properties
(`financial_status_synced_at`), which never make a record differ on their own. Records are in
key order, so batches are the same from one attempt to the next.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import duckdb

from reverse_etl.contract import ObjectSpec, to_property_value
from reverse_etl.errors import SyncModelInvalid


@dataclass(frozen=True)
class RecordChange:
    """One record to send: `properties` maps each sent property to (confirmed value or None, new);
    `new` when the CRM never confirmed a value of this record; `routine` when only values that
    move with the calendar alone (days overdue) differ."""

    record_id: str
    properties: dict[str, tuple[str | None, str]]
    new: bool = False
    routine: bool = False

    @property
    def payload(self) -> dict[str, str]:
        """The `properties` of the batch input: the new values."""
        return {name: new for name, (_, new) in self.properties.items()}


@dataclass(frozen=True)
class Diff:
    changes: list[RecordChange]
    unchanged: int
    parked: list[str]  # differing records held back: parked dead letters wait for an operator
    total: int

    @property
    def new(self) -> int:
        """Records the CRM never confirmed a value of (a first push, or one cut short)."""
        return sum(1 for c in self.changes if c.new)

    @property
    def routine(self) -> int:
        """Records whose only difference is the calendar's (days overdue ticking on)."""
        return sum(1 for c in self.changes if c.routine and not c.new)

    @property
    def changed_ids(self) -> set[str]:
        return {c.record_id for c in self.changes}


def read_sync_model(con: duckdb.DuckDBPyConnection, spec: ObjectSpec) -> dict[str, dict[str, str]]:
    """record id -> {property: value as sent}; fails on a null or duplicate key before anything is sent."""
    columns = ", ".join([spec.key, *spec.names])
    try:
        rows = con.execute(f"SELECT {columns} FROM {spec.relation}").fetchall()
    except duckdb.CatalogException as exc:
        raise SyncModelInvalid(f"{spec.relation} is not in the warehouse; build the crm_sync models first "
                               f"(dbt build --select {spec.model}): {exc}") from None
    nulls = sum(1 for row in rows if row[0] is None or str(row[0]).strip() == "")
    counts = Counter(str(row[0]) for row in rows if row[0] is not None)
    duplicates = sorted(key for key, n in counts.items() if n > 1)
    if nulls or duplicates:
        shown = ", ".join(duplicates[:10]) + (" ..." if len(duplicates) > 10 else "")
        raise SyncModelInvalid(f"{spec.relation}: {nulls} rows with a null {spec.key}, "
                               f"{len(duplicates)} duplicated keys{': ' + shown if duplicates else ''}. "
                               f"Nothing was sent.")
    return {str(row[0]): {name: to_property_value(value) for name, value in zip(spec.names, row[1:])}
            for row in rows}


def compute(spec: ObjectSpec, rows: dict[str, dict[str, str]], confirmed: dict[str, dict[str, str]],
            parked: set[str] = frozenset()) -> Diff:
    """The records of `rows` whose mapped values differ from `confirmed`, parked ones held back."""
    metadata = spec.metadata_names
    changes: list[RecordChange] = []
    held: list[str] = []
    for record_id in sorted(rows):
        values = rows[record_id]
        known = confirmed.get(record_id, {})
        differing = [name for name in spec.names if name not in metadata and known.get(name) != values[name]]
        if not differing:
            continue
        if record_id in parked:
            held.append(record_id)
            continue
        sent = [name for name in spec.names if name in differing or name in metadata]
        changes.append(RecordChange(record_id, {name: (known.get(name), values[name]) for name in sent},
                                    new=not known, routine=set(differing) <= spec.ticking_names))
    return Diff(changes=changes, unchanged=len(rows) - len(changes) - len(held), parked=held, total=len(rows))
