"""`harvest_correction`: hours corrected after approval. A consultant finds a billable entry
wrong after its week was approved; the manager reopens the week, the hours are corrected and the
week approved again, before the month is invoiced, so the month's Stripe invoice bills the
corrected hours. Harvest shows the hours first logged until the correction, the corrected ones
after it, changed (`updated_at`) at the correction.

Drawn per billable time entry from the month's own corrections stream, so the rate moves no
fault and no other noise.
"""

from __future__ import annotations

import numpy as np

from sandbox.world.config import NEVER
from sandbox.world.table import Table
from sandbox.world.time_mistakes import put_right_by


def plan(entries: Table, rng: np.random.Generator, rate: float) -> None:
    """Add `hours_logged` and `corrected_at` to a month's new time entries and correct the chosen
    ones' `hours`, in place."""
    n = len(entries)
    u, delta, delay = rng.random(n), rng.integers(-6, 7, n) * 0.25, rng.uniform(0.5, 3, n)
    corrected_at = put_right_by(entries, delay)
    corrected = np.maximum(entries["hours"] + delta, 0.25)
    chosen = entries["billable"] & (u < rate) & (corrected != entries["hours"]) & (corrected_at > entries["approved_at"])
    entries["hours_logged"] = entries["hours"].copy()
    entries["corrected_at"] = np.where(chosen, corrected_at, NEVER)
    entries["hours"] = np.where(chosen, corrected, entries["hours"])
