"""The PSA as delivery keeps it: clients, projects, people, tasks, time and expenses."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from typing import Any

import numpy as np

from sandbox import facts, store
from sandbox.project import Window, day_strings
from sandbox.world import names
from sandbox.world.config import CURRENCIES, DAY, ENTITIES, EXPENSE_CATEGORIES, ROLES, SERVICES, TASKS
from sandbox.world.derived import (
    HV_CLIENT_BASE, HV_DUPLICATE_CLIENT_BASE, HV_EXPENSE_BASE, HV_EXPENSE_CATEGORY_BASE,
    HV_ORPHAN_CLIENT_BASE, HV_ORPHAN_PROJECT_BASE, HV_PROJECT_BASE, HV_TASK_ASSIGNMENT_BASE, HV_TASK_BASE,
    HV_ENTRY_IN_ERROR_BASE, HV_TIME_ENTRY_BASE, HV_USER_ASSIGNMENT_BASE, HV_USER_BASE, Derived,
)
from sandbox.world.codes import CF_DUPLICATE, DUP_HARVEST, FIXED_FEE, ORPHAN_HARVEST, RETAINER, T_AND_M
from sandbox.world.firm import World
from sandbox.world.table import Table
from sandbox.world.time_mistakes import TASK_BILLABLE

TIME_NOTES = (
    "Stakeholder interviews", "Workshop preparation", "Data model review", "Status meeting with client",
    "Drafted recommendations", "Pipeline development", "Testing and fixes", "Requirements analysis",
    "Steering committee", "Documentation", "Backlog grooming", "Handover session",
)
LOCKED_APPROVED = "Item Approved and Locked for this Time Period"
LOCKED_INVOICED = "Item Invoiced and Locked for this Time Period"


def project(world: World, derived: Derived, window: Window, con: sqlite3.Connection,
            written: list[dict[str, Any]] = ()) -> dict[str, int]:
    counts = {}
    if window.is_full:
        counts.update(_static(world, window, con))
    counts["clients"] = _clients(world, derived, window, con)
    counts["projects"] = _projects(world, derived, window, con)
    counts["time_entries"] = _time_entries(world, derived, window, con, facts.harvest_notes(list(written)),
                                           facts.deleted_entries(list(written)))
    counts["expenses"] = _expenses(world, derived, window, con)
    return counts


def _static(world: World, window: Window, con: sqlite3.Connection) -> dict[str, int]:
    """People, tasks and expense categories: set up before history starts, unchanged since."""
    users = world.users
    setup = world.config.start - 400 * DAY
    rows = []
    for i in range(len(users)):
        first, last = users["first_name"][i], users["last_name"][i]
        role = ROLES[int(users["role"][i])][0]
        rows.append((
            HV_USER_BASE + i, first, last, f"{names.email_local(first, last)}.{i}@concord-advisory.com",
            "", "Europe/London" if ENTITIES[int(users["entity"][i])].key != "us" else "America/New_York",
            int(users["capacity"][i]), int(users["is_contractor"][i]), 1, f'["{role}"]', '["member"]',
            float(users["base_rate"][i]), float(users["cost_rate"][i]), int(users["created_at"][i]),
            int(users["created_at"][i]),
        ))
    con.executemany("INSERT OR REPLACE INTO hv_users VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.executemany("INSERT OR REPLACE INTO hv_tasks VALUES (?,?,?,?,?,?,?,?)", [
        (HV_TASK_BASE + k, name, int(billable), None, 1, 1, setup, setup) for k, (name, billable) in enumerate(TASKS)])
    con.executemany("INSERT OR REPLACE INTO hv_expense_categories VALUES (?,?,?,?,?,?,?)", [
        (HV_EXPENSE_CATEGORY_BASE + k, name, unit, price, 1, setup, setup)
        for k, (name, unit, price) in enumerate(EXPENSE_CATEGORIES)])
    return {"users": len(rows), "tasks": len(TASKS), "expense_categories": len(EXPENSE_CATEGORIES)}


def _statement_key(key: str) -> str:
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _clients(world: World, d: Derived, window: Window, con: sqlite3.Connection) -> int:
    clients = world.clients
    rows = []
    changed = np.flatnonzero(window.changed(d.harvest_client_at))
    for i in changed.tolist():
        at = int(window.stamp_s(np.array([d.harvest_client_at[i]]))[0])
        country = clients["country"][i]
        address = f"{names.COUNTRIES[country][4][int(clients['variant'][i]) % 5]}, {names.COUNTRY_NAMES[country]}"
        rows.append((HV_CLIENT_BASE + i, d.system_names[i]["harvest"], 1, address,
                     _statement_key(f"{world.seed}:client:{i}"), CURRENCIES[int(clients["currency"][i])],
                     int(d.harvest_client_at[i]), at))
    dup = np.flatnonzero((clients["fault"] == CF_DUPLICATE) & (clients["fault_dup_system"] == DUP_HARVEST)
                         & window.changed(d.duplicate_at))
    for i in dup.tolist():
        at = int(d.duplicate_at[i])
        rows.append((HV_DUPLICATE_CLIENT_BASE + i,
                     names.duplicate_name(d.system_names[i]["harvest"], int(clients["variant"][i])), 1, None,
                     _statement_key(f"{world.seed}:duplicate:{i}"), CURRENCIES[int(clients["currency"][i])],
                     at, int(window.stamp_s(np.array([at]))[0])))
    orphans = world.orphans
    if len(orphans):
        harvest_orphans = np.flatnonzero((orphans["system"] == ORPHAN_HARVEST) & window.changed(orphans["created_at"]))
        for i in harvest_orphans.tolist():
            at = int(orphans["created_at"][i])
            rows.append((HV_ORPHAN_CLIENT_BASE + i, f"{orphans['first_name'][i]} {orphans['last_name'][i]} (prospect)",
                         1, None, _statement_key(f"{world.seed}:orphan:{i}"),
                         CURRENCIES[int(orphans["currency"][i])], at, int(window.stamp_s(np.array([at]))[0])))
    con.executemany("INSERT OR REPLACE INTO hv_clients VALUES (?,?,?,?,?,?,?,?)", rows)
    return len(rows)


def _projects(world: World, d: Derived, window: Window, con: sqlite3.Connection) -> int:
    engagements, members = world.engagements, world.members
    if not len(engagements):
        return 0
    created = engagements["project_created_at"]
    events = (created, d.project_archived_at)
    rows = np.flatnonzero(d.has_project & window.visible(created) & window.changed(*events))
    stamps = window.stamp_s(window.last(*events)[rows])
    deals = world.deals
    project_rows, ua_rows, ta_rows = [], [], []
    for e, stamp in zip(rows.tolist(), stamps.tolist()):
        kind = int(engagements["kind"][e])
        client = int(engagements["client"][e])
        deal = int(engagements["deal"][e])
        service = SERVICES[kind][int(deals["service"][deal])]
        active = int(d.project_archived_at[e] > window.end)
        so_amount = float(engagements["so_amount"][e])
        months = int(engagements["months"][e])
        code = Derived.so_name(e)
        budget = so_amount / months if kind == RETAINER else so_amount
        created_at = int(created[e])
        project_id = HV_PROJECT_BASE + e
        project_rows.append((
            project_id, HV_CLIENT_BASE + client, f"{service} - {d.system_names[client]['harvest']}", code,
            active, 1, int(kind == FIXED_FEE),
            {T_AND_M: "People", FIXED_FEE: "Project", RETAINER: "none"}[kind],
            round(budget, 2), "project_cost", int(kind == RETAINER), 1, 80.0, 0, None, 0,
            None, so_amount if kind == FIXED_FEE else None,
            f"Engagement {code}",
            day_strings(np.array([engagements["start_day"][e]]))[0],
            day_strings(np.array([engagements["end_day"][e]]))[0], created_at, stamp,
        ))
        for m in np.flatnonzero(members["engagement"] == e).tolist():
            ua_rows.append((HV_USER_ASSIGNMENT_BASE + m, project_id, HV_USER_BASE + int(members["user"][m]), active,
                            int(members["is_pm"][m]), 0, float(members["rate"][m]), None, created_at, stamp))
        for k, (_, billable) in enumerate(TASKS):
            ta_rows.append((HV_TASK_ASSIGNMENT_BASE + e * 10 + k, project_id, HV_TASK_BASE + k, active,
                            int(billable and kind == T_AND_M), None, None, created_at, stamp))
    orphans = world.orphans
    if len(orphans):
        harvest_orphans = np.flatnonzero((orphans["system"] == ORPHAN_HARVEST) & window.changed(orphans["created_at"]))
        for i in harvest_orphans.tolist():
            at = int(orphans["created_at"][i]) + 3600
            project_rows.append((
                HV_ORPHAN_PROJECT_BASE + i, HV_ORPHAN_CLIENT_BASE + i, "Pre-sales discovery", None, 1, 0, 0, "none",
                None, "none", 0, 0, 80.0, 0, None, 0, None, None, "", None, None, at,
                int(window.stamp_s(np.array([at]))[0])))
    con.executemany(f"INSERT OR REPLACE INTO hv_projects VALUES ({','.join('?' * 23)})", project_rows)
    con.executemany("INSERT OR REPLACE INTO hv_user_assignments VALUES (?,?,?,?,?,?,?,?,?,?)", ua_rows)
    con.executemany("INSERT OR REPLACE INTO hv_task_assignments VALUES (?,?,?,?,?,?,?,?,?)", ta_rows)
    return len(project_rows)


def _time_entries(world: World, d: Derived, window: Window, con: sqlite3.Connection,
                  written_notes: dict[int, str | None], api_deleted: set[int]) -> int:
    """The entries changed in the window; copies logged by mistake until they are deleted."""
    entries, copies = world.time_entries, world.entries_in_error
    count = 0
    if len(entries):
        times = (entries["created_at"], entries["approved_at"], entries["marked_at"], entries["corrected_at"],
                 entries["moved_at"])
        rows = np.flatnonzero(window.visible(entries["created_at"]) & window.changed(*times) & ~entries["deleted"])
        count += _put_entries(world, window, con, entries.take(rows), HV_TIME_ENTRY_BASE + rows, written_notes)
    if len(copies):
        rows = np.flatnonzero(window.changed(copies["created_at"], copies["approved_at"], copies["deleted_at"]))
        gone = copies["deleted_at"][rows] <= window.end
        con.executemany("DELETE FROM hv_time_entries WHERE id = ?",
                        [(i,) for i in (HV_ENTRY_IN_ERROR_BASE + rows[gone]).tolist()])
        live = rows[~gone]
        live = live[~np.isin(HV_ENTRY_IN_ERROR_BASE + live, list(api_deleted))]
        count += _put_entries(world, window, con, copies.take(live), HV_ENTRY_IN_ERROR_BASE + live, {})
    return count


def _put_entries(world: World, window: Window, con: sqlite3.Connection, e: Table, ids: np.ndarray,
                 written_notes: dict[int, str | None]) -> int:
    if not len(ids):
        return 0
    end = window.end
    # Harvest's invoicing is off (the firm invoices in Stripe): an entry is `is_billed` only where
    # someone marked it invoiced by hand
    is_closed = e["approved_at"] <= end
    is_billed = e["marked_at"] <= end
    locked_reason = np.where(is_billed, LOCKED_INVOICED, np.where(is_closed, LOCKED_APPROVED, None))
    updated = window.stamp_s(window.last(e["created_at"], e["approved_at"], e["marked_at"], e["corrected_at"],
                                         e["moved_at"]))
    hours = np.where(e["corrected_at"] <= end, e["hours"], e["hours_logged"])  # as logged until corrected
    moved = e["moved_at"] <= end  # where it was logged until moved
    engagement = np.where(moved, e["engagement"], e["logged_engagement"])
    member = np.where(moved, e["member"], e["logged_member"])
    billable = np.where(moved, e["billable"], TASK_BILLABLE[e["task"]]
                        & (world.engagements["kind"][engagement] == T_AND_M))
    rate = np.where(moved, e["rate"], world.members["rate"][member])
    client = world.engagements["client"][engagement]
    columns = (
        ids, day_strings(e["spent_day"]), HV_USER_BASE + e["user"],
        HV_USER_ASSIGNMENT_BASE + member, HV_CLIENT_BASE + client, HV_PROJECT_BASE + engagement,
        HV_TASK_BASE + e["task"], HV_TASK_ASSIGNMENT_BASE + engagement * 10 + e["task"], hours,
        _notes(e["note"], ids, written_notes), (is_closed | is_billed).astype(np.int64), locked_reason,
        is_closed.astype(np.int64), is_billed.astype(np.int64), billable.astype(np.int64),
        np.ones(len(ids), dtype=np.int64), np.where(billable, rate, None),
        world.users["cost_rate"][e["user"]], e["created_at"], updated,
    )
    sql = f"INSERT OR REPLACE INTO hv_time_entries VALUES ({','.join('?' * len(columns))})"
    step = 100_000  # Python tuples for millions of rows would need gigabytes; convert a slice at a time
    with store.bulk_load(con, "hv_time_entries") if window.is_full else contextlib.nullcontext():
        for start in range(0, len(ids), step):
            con.executemany(sql, zip(*(c[start:start + step].tolist() for c in columns)))
    return len(ids)


def _notes(note: np.ndarray, ids: np.ndarray, written_notes: dict[int, str | None]) -> np.ndarray:
    """The entries' simulated notes, or the notes written through the API where there are some."""
    notes = np.array(TIME_NOTES, dtype=object)[note]
    for entry_id, written in written_notes.items():
        position = np.searchsorted(ids, entry_id)
        if position < len(ids) and ids[position] == entry_id:
            notes[position] = written
    return notes


def _expenses(world: World, d: Derived, window: Window, con: sqlite3.Connection) -> int:
    expenses = world.expenses
    if not len(expenses):
        return 0
    created, approved, billed = expenses["created_at"], expenses["approved_at"], expenses["billed_at"]
    rows = np.flatnonzero(window.visible(created) & window.changed(created, approved, billed))
    end = window.end
    records = []
    for i in rows.tolist():
        e = int(expenses["engagement"][i])
        is_closed = approved[i] <= end
        is_billed = billed[i] <= end
        updated = int(window.stamp_s(window.last(created[i:i + 1], approved[i:i + 1], billed[i:i + 1]))[0])
        category = int(expenses["category"][i])
        records.append((
            HV_EXPENSE_BASE + i, HV_CLIENT_BASE + int(world.engagements["client"][e]), HV_PROJECT_BASE + e,
            HV_USER_BASE + int(expenses["user"][i]), HV_USER_ASSIGNMENT_BASE + int(expenses["member"][i]),
            HV_EXPENSE_CATEGORY_BASE + category, day_strings(np.array([expenses["spent_day"][i]]))[0],
            float(expenses["total_cost"][i]), float(expenses["units"][i]) or None,
            f"{EXPENSE_CATEGORIES[category][0]} for client work", int(expenses["billable"][i]), int(is_closed),
            int(is_closed or is_billed), int(is_billed),
            LOCKED_INVOICED if is_billed else (LOCKED_APPROVED if is_closed else None), int(created[i]), updated,
        ))
    con.executemany("INSERT OR REPLACE INTO hv_expenses VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", records)
    return len(records)
