"""Work done inside its service level, but not at once: the `slow_posting` noise.

Finance posts some invoices to the ERP three to five days after Stripe finalised them, and
records their payment, credit note or cancellation two to five days after billing did — always
inside the firm's five-day posting SLA (`ERP_POSTING_SLA_DAYS`), so none of it is a fault, though
at any moment some invoices are finalised but not yet posted, or paid but not yet applied. A
payment can so reach the ERP before its invoice does. Drawn per invoice from the month's
timing-noise stream.
"""

from __future__ import annotations

import numpy as np

from sandbox.world.config import DAY, ERP_POSTING_SLA_DAYS, NEVER
from sandbox.world.table import Table

LATEST = ERP_POSTING_SLA_DAYS - 0.2  # days: late, never past the SLA


def plan(invoices: Table, rng: np.random.Generator, rates: dict[str, float]) -> None:
    """Delay the ERP's postings of some newly planned invoices, in place."""
    n = len(invoices)
    slow = rng.random(n) < rates["slow_posting"]
    posting_lag = (rng.uniform(3, LATEST, n) * DAY).astype(np.int64)
    follow_lag = (rng.uniform(2, LATEST, n) * DAY).astype(np.int64)
    invoices["slow_posting"] = slow
    posted = invoices["erp_posted_at"]
    invoices["erp_posted_at"] = np.where(slow & (posted < NEVER), invoices["finalized_at"] + posting_lag, posted)
    for column, event in (("erp_paid_at", "paid_at"), ("erp_cn_at", "cn_at"), ("erp_cancel_at", "voided_at")):
        follows = slow & (invoices[column] < NEVER) & (invoices["instalments"] == 0)
        invoices[column] = np.where(follows, invoices[event] + follow_lag, invoices[column])
