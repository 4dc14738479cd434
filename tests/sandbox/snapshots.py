"""Whole-state snapshots of a sandbox data dir, for comparing two states record by record."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sandbox import erp_schema, store

# Columns that legitimately differ between equal states: insertion order and install stamps.
IGNORED = {"stripe_objects": {"seq"}, "stripe_events": {"seq"}, "stripe_invoice_lines": set(),
           "hs_properties": {"created_at", "updated_at"}}
VENDOR_TABLES = {
    "hs_objects": ("object_type", "id"), "hs_associations": ("from_type", "from_id", "to_type", "to_id", "type_id"),
    "hs_properties": ("object_type", "name"), "stripe_objects": ("id",), "stripe_invoice_lines": ("invoice", "seq"),
    "stripe_events": ("id",), "hv_clients": ("id",), "hv_users": ("id",), "hv_tasks": ("id",),
    "hv_projects": ("id",), "hv_user_assignments": ("id",), "hv_task_assignments": ("id",),
    "hv_time_entries": ("id",), "hv_expenses": ("id",), "hv_expense_categories": ("id",),
}


def vendor_state(data_dir: Path) -> dict[str, dict[tuple, dict[str, Any]]]:
    con = store.connect(data_dir)
    con.row_factory = sqlite3.Row
    try:
        state = {}
        for table, key in VENDOR_TABLES.items():
            rows = {}
            for row in con.execute(f"SELECT * FROM {table}"):
                record = {k: row[k] for k in row.keys() if k not in IGNORED.get(table, set())}
                rows[tuple(row[k] for k in key)] = record
            state[table] = rows
        return state
    finally:
        con.close()


def erp_state(data_dir: Path) -> dict[str, dict[Any, dict[str, Any]]]:
    con = store.connect(data_dir)
    url = store.erp_url(con, data_dir)
    con.close()
    engine = erp_schema.engine_for(url)
    state = {}
    with engine.connect() as conn:
        for table in erp_schema.metadata.sorted_tables:
            keys = [c.name for c in table.primary_key.columns]
            rows = conn.execute(table.select()).mappings().all()
            state[table.name] = {tuple(r[k] for k in keys): dict(r) for r in rows}
    engine.dispose()
    return state


def changed_keys(before: dict[tuple, dict], after: dict[tuple, dict]) -> set[tuple]:
    """Keys of records that are new in `after` or differ from `before`."""
    return {key for key, row in after.items() if before.get(key) != row}
