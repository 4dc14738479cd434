"""Harvest writes as facts: time entries deleted, edited or created through the API, and marked
invoiced by hand in its web app.

Harvest only lets a client delete or edit an entry nobody has approved yet (or one a manager
reopened in the web app), so every such entry belongs to a month the firm has not billed. The
world takes the write as soon as the simulator plans the entry (`amend_time`), before anything
is billed from it:

- A deleted entry is gone: never approved, invoiced, marked by hand nor named by the ground
  truth; the rest of its week is approved and its month invoiced without it.
- An edited entry has the hours, spent date, project and task written, and what follows from
  them (client, assignments, billable, rate); its month's Stripe invoice bills the hours Harvest
  shows and an unbilled-time fault counts them. The firm still approves it (with the week it
  was moved to, if that week is approved later). The notes written are laid over every later
  projection of it (`harvest_notes`), the world keeping no text.
- An entry reopened is not approved until approved again (or ever, if not), and is approved
  from then on. Reopen only entries whose month is not invoiced yet: the world takes an edit as
  if it had always been so, and an invoice already issued in Stripe would not follow it.
- Entries the API created live in the API's state only: the projection never writes them, so
  nobody approves or invoices them.
- An entry someone marked invoiced by hand stays marked from then on (`apply`), whatever the
  Stripe invoices say: the firm's habit, modelled by the `harvest_marking` noise, done by a person.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from sandbox.world.config import DAY, NEVER
from sandbox.world.derived import HV_PROJECT_BASE, HV_TASK_BASE, HV_TIME_ENTRY_BASE, HV_USER_ASSIGNMENT_BASE
from sandbox.world.firm import World
from sandbox.world.table import Table

EPOCH = dt.date(1970, 1, 1)


def _entry_writes(facts: list[dict[str, Any]],
                  actions: tuple[str, ...] = ("update", "delete")) -> list[dict[str, Any]]:
    return [f for f in facts if f["system"] == "harvest" and f["object"] == "time_entry" and f["action"] in actions]


def amend_time(facts: list[dict[str, Any]]) -> Callable[[Table, int], None] | None:
    """The simulator's hook (`simulate(..., amend_time=)`) rewriting simulated time entries as
    the API left them; None when no simulated entry was written."""
    writes = _entry_writes(facts, ("update", "delete", "reopen", "approve"))
    if not writes:
        return None

    def amend(entries: Table, first: int) -> None:
        for fact in writes:
            row = int(fact["id"]) - HV_TIME_ENTRY_BASE - first
            if not 0 <= row < len(entries):
                continue  # another month's entry, or one the API created
            if fact["action"] == "delete":
                entries["deleted"][row] = True
            elif fact["action"] == "reopen":
                entries["approved_at"][row] = NEVER
            elif fact["action"] == "approve":
                entries["approved_at"][row] = int(fact["at"])
            else:
                _edit(entries, row, fact)

    return amend


def _edit(entries: Table, row: int, fact: dict[str, Any]) -> None:
    """Take the written values; an entry moved to a later week is approved with that week."""
    day = (dt.date.fromisoformat(fact["spent_date"]) - EPOCH).days
    old_monday = int(entries["spent_day"][row]) - (int(entries["spent_day"][row]) + 3) % 7
    new_monday = day - (day + 3) % 7
    approved = int(entries["approved_at"][row])
    entries["approved_at"][row] = max(approved, approved + (new_monday - old_monday) * DAY)
    entries["spent_day"][row] = day
    entries["hours"][row] = entries["hours_logged"][row] = float(fact["hours"])
    entries["corrected_at"][row] = NEVER  # the write is what Harvest shows from now on
    entries["moved_at"][row] = NEVER
    entries["engagement"][row] = int(fact["project_id"]) - HV_PROJECT_BASE
    entries["member"][row] = int(fact["user_assignment_id"]) - HV_USER_ASSIGNMENT_BASE
    entries["logged_engagement"][row] = entries["engagement"][row]  # no longer where it was first logged
    entries["logged_member"][row] = entries["member"][row]
    entries["task"][row] = int(fact["task_id"]) - HV_TASK_BASE
    entries["billable"][row] = bool(fact["billable"])
    if fact["billable"]:
        entries["rate"][row] = float(fact["billable_rate"])


def apply(world: World, facts: list[dict[str, Any]]) -> None:
    """Entries marked invoiced by hand are marked from the moment of the mark (or the firm's own
    earlier mark)."""
    entries = world.time_entries
    for fact in facts:
        if fact["system"] == "harvest" and fact["object"] == "time_entry" and fact["action"] == "mark_invoiced":
            row = int(fact["id"]) - HV_TIME_ENTRY_BASE
            if 0 <= row < len(entries):
                entries["marked_at"][row] = min(int(entries["marked_at"][row]), int(fact["at"]))


def deleted_entries(facts: list[dict[str, Any]]) -> set[int]:
    """Ids of the time entries deleted through the API."""
    return {int(f["id"]) for f in _entry_writes(facts, ("delete",))}


def harvest_notes(facts: list[dict[str, Any]]) -> dict[int, str | None]:
    """Time entry id -> the notes last written through the API."""
    return {int(f["id"]): f["notes"] for f in _entry_writes(facts) if f["action"] == "update"}
