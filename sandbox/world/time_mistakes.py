"""Time logged by mistake in Harvest, put right before the month is invoiced.

- `harvest_delete`: a consultant logs the same time twice (from the phone app and the browser);
  the copy is approved with the week; the manager spots it, reopens the week and the copy is
  deleted. Harvest no longer lists it, and nothing tells a reader it was ever there.
- `harvest_move`: a consultant logs time against another of their projects; the week is
  approved; the manager of the project it belongs to asks for it, the week is reopened and the
  entry moved to its project (its project, client, task and user assignments, rate and
  billability change; `updated_at` at the move), before the month is invoiced.

Both are put right before the month is invoiced, so each month's Stripe invoice bills the time
as it finally stands. Drawn per billable time entry from each kind's own stream, so the rates
move no fault and no other noise: the copies live in their own table (`entries_in_error`), and
a moved entry ends where it would have been without the noise.
"""

from __future__ import annotations

import numpy as np

from sandbox.world.config import DAY, NEVER, TASKS, TM_INVOICE_DAY
from sandbox.world.codes import EF_NO_PROJECT, T_AND_M
from sandbox.world.table import Table

TASK_BILLABLE = np.array([billable for _, billable in TASKS])


def put_right_by(entries: Table, delay_days: np.ndarray) -> np.ndarray:
    """When a mistake found `delay_days` after approval is put right: never later than two days
    before the month is invoiced."""
    month = entries["spent_day"].astype("datetime64[D]").astype("datetime64[M]")
    invoiced_from = ((month + 1).astype("datetime64[D]").astype(np.int64) + TM_INVOICE_DAY - 2) * DAY
    return np.minimum(entries["approved_at"] + (delay_days * DAY).astype(np.int64), invoiced_from)


def copies(entries: Table, rng: np.random.Generator, rate: float) -> Table:
    """`harvest_delete`: the copies of a month's new entries logged twice, with `deleted_at`."""
    n = len(entries)
    u, lag, delay = rng.random(n), rng.integers(60, 2 * 3600, n), rng.uniform(0.5, 4, n)
    deleted_at = put_right_by(entries, delay)
    chosen = np.flatnonzero(entries["billable"] & (u < rate) & (deleted_at > entries["approved_at"])
                            & (entries["corrected_at"] >= NEVER))
    out = entries.take(chosen)
    out["created_at"] = out["created_at"] + lag[chosen]
    out["deleted_at"] = deleted_at[chosen]
    out["original"] = chosen  # the entry's row within the month's new entries
    out["moved_at"] = np.full(len(chosen), NEVER, dtype=np.int64)  # copied as it finally stands
    out["corrected_at"], out["hours"] = np.full(len(chosen), NEVER, dtype=np.int64), out["hours_logged"].copy()
    out["logged_engagement"], out["logged_member"] = out["engagement"].copy(), out["member"].copy()
    return out


def plan_moves(entries: Table, rng: np.random.Generator, rate: float, engagements: Table, members: Table) -> None:
    """`harvest_move`: add `logged_engagement`, `logged_member` and `moved_at` to a month's new
    entries, in place. An entry is logged on another T&M project its consultant works on that
    day; entries of consultants with no such project are never moved."""
    n = len(entries)
    u, pick, delay = rng.random(n), rng.integers(0, 2**31, n), rng.uniform(0.5, 3, n)
    moved_at = put_right_by(entries, delay)
    logged_engagement = entries["engagement"].copy()
    logged_member = entries["member"].copy()
    chosen = np.flatnonzero(entries["billable"] & (u < rate) & (moved_at > entries["approved_at"]))
    if len(chosen):
        eng = members["engagement"]
        tm_projects = (engagements["kind"] == T_AND_M) & (engagements["fault"] != EF_NO_PROJECT)
        candidates = np.flatnonzero(tm_projects[eng])
        candidates = candidates[np.argsort(members["user"][candidates], kind="stable")]
        users = members["user"][candidates]
        for k in chosen.tolist():
            user, day = entries["user"][k], int(entries["spent_day"][k])
            rows = candidates[np.searchsorted(users, user):np.searchsorted(users, user, side="right")]
            other = rows[(eng[rows] != entries["engagement"][k]) & (engagements["start_day"][eng[rows]] <= day)
                         & (engagements["end_day"][eng[rows]] >= day)
                         & (engagements["project_created_at"][eng[rows]] <= entries["created_at"][k])]
            if len(other):
                m = int(other[int(pick[k]) % len(other)])
                logged_member[k], logged_engagement[k] = m, int(eng[m])
    entries["logged_engagement"] = logged_engagement
    entries["logged_member"] = logged_member
    entries["moved_at"] = np.where(logged_engagement != entries["engagement"], moved_at, NEVER)
