"""The sandbox's persistent state: one SQLite file holding what HubSpot, Stripe and Harvest
would hold, plus the sandbox clock and settings.

The ERP lives in its own database (see `sandbox.erp_schema`) because the pipeline reads it
directly, as it would an on-prem Odoo database. Everything the vendor APIs serve is read from
here, so a restarted server picks up where it left off.

Timestamps: HubSpot columns are epoch milliseconds, Stripe and Harvest columns epoch seconds,
matching each vendor's own resolution.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

STATE_FILE = "sandbox.sqlite"
ERP_FILE = "erp.sqlite"
GROUND_TRUTH_FILE = "ground_truth.jsonl"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- HubSpot CRM ---------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS hs_objects (
    object_type TEXT NOT NULL,              -- companies | contacts | deals | notes
    id          INTEGER NOT NULL,
    properties  TEXT NOT NULL,              -- JSON object; every value a string
    created_at  INTEGER NOT NULL,           -- epoch ms (createdate)
    updated_at  INTEGER NOT NULL,           -- epoch ms (hs_lastmodifieddate)
    archived    INTEGER NOT NULL DEFAULT 0,
    archived_at INTEGER,
    PRIMARY KEY (object_type, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hs_objects_by_updated ON hs_objects (object_type, updated_at, id);

CREATE TABLE IF NOT EXISTS hs_associations (
    from_type TEXT NOT NULL,
    from_id   INTEGER NOT NULL,
    to_type   TEXT NOT NULL,
    to_id     INTEGER NOT NULL,
    type_id   INTEGER NOT NULL,
    category  TEXT NOT NULL DEFAULT 'HUBSPOT_DEFINED',
    label     TEXT,
    PRIMARY KEY (from_type, from_id, to_type, to_id, type_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hs_associations_reverse ON hs_associations (to_type, to_id, from_type);

CREATE TABLE IF NOT EXISTS hs_properties (
    object_type TEXT NOT NULL,
    name        TEXT NOT NULL,
    definition  TEXT NOT NULL,              -- JSON: label, type, fieldType, groupName, options, ...
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    archived    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (object_type, name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS hs_property_groups (
    object_type   TEXT NOT NULL,
    name          TEXT NOT NULL,
    label         TEXT NOT NULL,
    display_order INTEGER NOT NULL DEFAULT -1,
    archived      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (object_type, name)
) WITHOUT ROWID;

-- Stripe ----------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS stripe_objects (
    id       TEXT PRIMARY KEY,
    object   TEXT NOT NULL,                 -- customer | invoice | invoiceitem | charge | credit_note | dispute
    created  INTEGER NOT NULL,              -- epoch s
    seq      INTEGER NOT NULL,              -- tie-break for lists: newest first = created DESC, seq DESC
    customer TEXT,
    invoice  TEXT,
    charge   TEXT,
    status   TEXT,
    doc      TEXT NOT NULL                  -- the object as the API returns it (2023-08-16 shape)
);
CREATE INDEX IF NOT EXISTS stripe_objects_list ON stripe_objects (object, created DESC, seq DESC);
CREATE INDEX IF NOT EXISTS stripe_objects_by_customer ON stripe_objects (object, customer, created DESC, seq DESC);
CREATE INDEX IF NOT EXISTS stripe_objects_by_invoice ON stripe_objects (object, invoice);
CREATE INDEX IF NOT EXISTS stripe_objects_by_charge ON stripe_objects (object, charge);
CREATE INDEX IF NOT EXISTS stripe_objects_by_seq ON stripe_objects (seq);

CREATE TABLE IF NOT EXISTS stripe_invoice_lines (
    invoice TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    id      TEXT NOT NULL,
    doc     TEXT NOT NULL,                  -- line_item object
    PRIMARY KEY (invoice, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS stripe_events (
    id        TEXT PRIMARY KEY,
    created   INTEGER NOT NULL,
    seq       INTEGER NOT NULL UNIQUE,      -- global order of events
    type      TEXT NOT NULL,
    object_id TEXT NOT NULL,
    doc       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stripe_events_by_created ON stripe_events (created DESC, seq DESC);

CREATE TABLE IF NOT EXISTS stripe_idempotency (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created      INTEGER NOT NULL
);

-- Harvest -----------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS hv_clients (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, is_active INTEGER NOT NULL, address TEXT,
    statement_key TEXT NOT NULL, currency TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hv_users (
    id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL, email TEXT NOT NULL,
    telephone TEXT NOT NULL DEFAULT '', timezone TEXT NOT NULL, weekly_capacity INTEGER NOT NULL,
    is_contractor INTEGER NOT NULL, is_active INTEGER NOT NULL, roles TEXT NOT NULL,
    access_roles TEXT NOT NULL, default_hourly_rate REAL, cost_rate REAL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hv_tasks (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, billable_by_default INTEGER NOT NULL,
    default_hourly_rate REAL, is_default INTEGER NOT NULL, is_active INTEGER NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hv_projects (
    id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL, name TEXT NOT NULL, code TEXT,
    is_active INTEGER NOT NULL, is_billable INTEGER NOT NULL, is_fixed_fee INTEGER NOT NULL,
    bill_by TEXT NOT NULL, budget REAL, budget_by TEXT NOT NULL, budget_is_monthly INTEGER NOT NULL,
    notify_when_over_budget INTEGER NOT NULL, over_budget_notification_percentage REAL NOT NULL,
    show_budget_to_all INTEGER NOT NULL, cost_budget REAL, cost_budget_include_expenses INTEGER NOT NULL,
    hourly_rate REAL, fee REAL, notes TEXT NOT NULL DEFAULT '', starts_on TEXT, ends_on TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hv_projects_by_client ON hv_projects (client_id);
CREATE TABLE IF NOT EXISTS hv_user_assignments (
    id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, user_id INTEGER NOT NULL,
    is_active INTEGER NOT NULL, is_project_manager INTEGER NOT NULL, use_default_rates INTEGER NOT NULL,
    hourly_rate REAL, budget REAL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hv_user_assignments_by_project ON hv_user_assignments (project_id, user_id);
CREATE TABLE IF NOT EXISTS hv_task_assignments (
    id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, task_id INTEGER NOT NULL,
    is_active INTEGER NOT NULL, billable INTEGER NOT NULL, hourly_rate REAL, budget REAL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hv_task_assignments_by_project ON hv_task_assignments (project_id, task_id);
CREATE TABLE IF NOT EXISTS hv_time_entries (
    id INTEGER PRIMARY KEY, spent_date TEXT NOT NULL, user_id INTEGER NOT NULL,
    user_assignment_id INTEGER NOT NULL, client_id INTEGER NOT NULL, project_id INTEGER NOT NULL,
    task_id INTEGER NOT NULL, task_assignment_id INTEGER NOT NULL, hours REAL NOT NULL,
    notes TEXT, is_locked INTEGER NOT NULL, locked_reason TEXT, is_closed INTEGER NOT NULL,
    is_billed INTEGER NOT NULL, billable INTEGER NOT NULL, budgeted INTEGER NOT NULL,
    billable_rate REAL, cost_rate REAL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hv_time_entries_by_date ON hv_time_entries (spent_date DESC, id DESC);
CREATE INDEX IF NOT EXISTS hv_time_entries_by_updated ON hv_time_entries (updated_at);
CREATE INDEX IF NOT EXISTS hv_time_entries_by_project ON hv_time_entries (project_id);
CREATE INDEX IF NOT EXISTS hv_time_entries_by_user ON hv_time_entries (user_id);
CREATE TABLE IF NOT EXISTS hv_expense_categories (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, unit_name TEXT, unit_price REAL,
    is_active INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS hv_expenses (
    id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL, project_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL, user_assignment_id INTEGER NOT NULL, expense_category_id INTEGER NOT NULL,
    spent_date TEXT NOT NULL, total_cost REAL NOT NULL, units REAL, notes TEXT,
    billable INTEGER NOT NULL, is_closed INTEGER NOT NULL, is_locked INTEGER NOT NULL,
    is_billed INTEGER NOT NULL, locked_reason TEXT,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hv_expenses_by_updated ON hv_expenses (updated_at);
CREATE INDEX IF NOT EXISTS hv_expenses_by_date ON hv_expenses (spent_date DESC, id DESC);
"""


def state_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / STATE_FILE


def connect(data_dir: str | Path, *, create: bool = False) -> sqlite3.Connection:
    """Open the sandbox state. WAL lets the server keep answering while `advance` writes."""
    path = state_path(data_dir)
    if not create and not path.exists():
        raise FileNotFoundError(
            f"no sandbox state at {path}; run `concord sandbox generate --data-dir {data_dir}` first"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA busy_timeout=30000")
    if create:
        con.executescript(SCHEMA)
    return con


def index_statements(table: str) -> list[tuple[str, str]]:
    """(index name, CREATE INDEX statement) for `table`'s secondary indexes in SCHEMA."""
    found = []
    for statement in SCHEMA.split(";"):
        words = statement.split()
        if words[:2] == ["CREATE", "INDEX"] and words[words.index("ON") + 1] == table:
            found.append((words[5], statement.strip()))
    return found


class bulk_load:
    """`with bulk_load(con, table):` drops the table's secondary indexes and rebuilds them after,
    which for millions of rows is several times faster than maintaining them row by row."""

    def __init__(self, con: sqlite3.Connection, table: str):
        self.con, self.indexes = con, index_statements(table)

    def __enter__(self) -> None:
        for name, _ in self.indexes:
            self.con.execute(f"DROP INDEX IF EXISTS {name}")

    def __exit__(self, *exc: object) -> None:
        for _, statement in self.indexes:
            self.con.execute(statement)


def get_meta(con: sqlite3.Connection, key: str, default: Any = None) -> Any:
    row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return default if row is None else json.loads(row[0])


def set_meta(con: sqlite3.Connection, key: str, value: Any) -> None:
    con.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )


def erp_url(con: sqlite3.Connection, data_dir: str | Path) -> str:
    """The ERP database's SQLAlchemy URL: the one given at generate, else the data dir's SQLite
    file (resolved at read time, so a copied data dir uses its own copy)."""
    return get_meta(con, "erp_url") or f"sqlite:///{(Path(data_dir) / ERP_FILE).resolve()}"


class Clock:
    """The sandbox's simulated time, shared by the generator, `advance` and the servers.

    `now_ms` is where the simulated firm's history ends. Writes that arrive through the APIs
    are stamped `max(now, last stamp + 1 ms)`, so modification stamps never go backwards and
    incremental readers never miss a change, however writes and `advance` interleave.
    """

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    @property
    def now_ms(self) -> int:
        return int(get_meta(self.con, "now_ms"))

    @property
    def last_stamp_ms(self) -> int:
        return int(get_meta(self.con, "last_stamp_ms", 0))

    def floor_ms(self) -> int:
        """The earliest stamp a new change may carry."""
        return max(self.now_ms, self.last_stamp_ms + 1)

    def stamp_ms(self) -> int:
        """A fresh stamp for an API write; call inside the write's transaction."""
        stamp = self.floor_ms()
        set_meta(self.con, "last_stamp_ms", stamp)
        return stamp


def next_seq(con: sqlite3.Connection, table: str) -> int:
    """Next value of a table's `seq` ordering column."""
    (top,) = con.execute(f"SELECT COALESCE(MAX(seq), 0) FROM {table}").fetchone()
    return int(top) + 1


def move_associations(con: sqlite3.Connection, object_type: str, gone: int, kept: int) -> None:
    """Hand a HubSpot record's associations to the record it was merged into, as HubSpot's merge
    does (the caller deletes the record)."""
    columns = "from_type, from_id, to_type, to_id, type_id, category, label"
    con.execute(f"INSERT OR IGNORE INTO hs_associations ({columns}) SELECT from_type, ?, to_type, to_id, "
                "type_id, category, label FROM hs_associations WHERE from_type = ? AND from_id = ?",
                (kept, object_type, gone))
    con.execute(f"INSERT OR IGNORE INTO hs_associations ({columns}) SELECT from_type, from_id, to_type, ?, "
                "type_id, category, label FROM hs_associations WHERE to_type = ? AND to_id = ?",
                (kept, object_type, gone))
    con.execute("DELETE FROM hs_associations WHERE (from_type = ? AND from_id = ?) OR (to_type = ? AND to_id = ?)",
                (object_type, gone, object_type, gone))
