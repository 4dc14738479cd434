"""What the Harvest source reads and the contract each record must keep."""

from __future__ import annotations

import pyarrow as pa

from ingestion.quarantine import Contract

PER_PAGE = 2000  # Harvest's maximum
USER_AGENT = "Concord data platform (data-engineering@concord.example)"
# Records change during a walk over pages ordered by anything but `updated_at`; re-reading the
# last stretch of stamps on the next run (and skipping what is unchanged) is what makes sure
# none of those changes is missed.
LOOKBACK_SECONDS = 900
# Harvest reports no deletions. After each walk of the time entries, the source lists which
# entries still exist with a spent date from this many days before the newest `updated_at` the
# walk has seen (Harvest's clock, not the machine's) on; a landed entry of that window the list
# lacks was deleted. An entry can be edited or deleted until its month is invoiced, on the 12th
# of the next month (~43 days after its spent date), or later once reopened; 60 covers that.
# 0 turns the sweep off. Setting: SOURCES__HARVEST__TIME_ENTRIES__DELETION_WINDOW_DAYS.
DELETION_WINDOW_DAYS = 60
PRESENCE_TABLE = "time_entry_presence"

TIMESTAMP = pa.timestamp("us", tz="UTC")
STAMPS = {"created_at": TIMESTAMP, "updated_at": TIMESTAMP}

# Column types where inference could guess wrong (all-null pages, ints that are sometimes floats).
COLUMN_TYPES: dict[str, dict[str, pa.DataType]] = {
    "clients": {"id": pa.int64(), **STAMPS},
    "projects": {"id": pa.int64(), "client__id": pa.int64(), "budget": pa.float64(), "hourly_rate": pa.float64(),
                 "fee": pa.float64(), "cost_budget": pa.float64(), "starts_on": pa.date32(),
                 "ends_on": pa.date32(), "over_budget_notification_date": pa.date32(), **STAMPS},
    "users": {"id": pa.int64(), "default_hourly_rate": pa.float64(), "cost_rate": pa.float64(), **STAMPS},
    "tasks": {"id": pa.int64(), "default_hourly_rate": pa.float64(), **STAMPS},
    "time_entries": {
        "id": pa.int64(), "spent_date": pa.date32(), "hours": pa.float64(), "hours_without_timer": pa.float64(),
        "rounded_hours": pa.float64(), "billable_rate": pa.float64(), "cost_rate": pa.float64(),
        "user__id": pa.int64(), "client__id": pa.int64(), "project__id": pa.int64(), "task__id": pa.int64(),
        "user_assignment__id": pa.int64(), "user_assignment__hourly_rate": pa.float64(),
        "user_assignment__budget": pa.float64(), "user_assignment__created_at": TIMESTAMP,
        "user_assignment__updated_at": TIMESTAMP, "task_assignment__id": pa.int64(),
        "task_assignment__hourly_rate": pa.float64(), "task_assignment__budget": pa.float64(),
        "task_assignment__created_at": TIMESTAMP, "task_assignment__updated_at": TIMESTAMP,
        "invoice__id": pa.int64(), "timer_started_at": TIMESTAMP, **STAMPS},
    "expenses": {"id": pa.int64(), "spent_date": pa.date32(), "total_cost": pa.float64(), "units": pa.float64(),
                 "user__id": pa.int64(), "client__id": pa.int64(), "project__id": pa.int64(),
                 "expense_category__id": pa.int64(), "expense_category__unit_price": pa.float64(),
                 "user_assignment__id": pa.int64(), "invoice__id": pa.int64(), **STAMPS},
}

# Each record answers for its own fields; an embedded object's (a time entry's client) are the
# embedded record's to keep, and quarantined there.
_STAMPED = {"created_at": "datetime", "updated_at": "datetime"}
CONTRACTS: dict[str, Contract] = {
    "clients": Contract("clients", {"id": "int", "name": "string", **_STAMPED}, {"currency": "currency"}),
    "projects": Contract("projects", {"id": "int", "name": "string", "client.id": "int", **_STAMPED},
                         {"starts_on": "date", "ends_on": "date", "budget": "number", "fee": "number",
                          "hourly_rate": "number"}),
    "users": Contract("users", {"id": "int", **_STAMPED}, {"default_hourly_rate": "number", "cost_rate": "number"}),
    "tasks": Contract("tasks", {"id": "int", "name": "string", **_STAMPED}),
    "time_entries": Contract(
        "time_entries",
        {"id": "int", "spent_date": "date", "hours": "number", "user.id": "int", "project.id": "int",
         "client.id": "int", "task.id": "int", **_STAMPED},
        {"billable_rate": "number", "cost_rate": "number"}),
    "expenses": Contract(
        "expenses",
        {"id": "int", "spent_date": "date", "total_cost": "number", "user.id": "int", "project.id": "int",
         **_STAMPED}),
}
RESOURCES = tuple(CONTRACTS)
