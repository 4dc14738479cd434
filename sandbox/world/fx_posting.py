"""`fx_rounding`: an invoice billed in one currency and booked in another. A client billed in a
currency other than its legal entity's (a US client of the German entity, billed in USD): finance
books some of its invoices in the entity's own currency, converted at the ERP's rate of the
accounting date and rounded to the cent, and applies the payment in that currency. Billing and
the ledger then differ only by the rounding of a converted amount.

Drawn per paid invoice of such a client, paid in one go or in instalments (no fault, dispute,
credit note, grouped transfer or overpayment), from the month's own stream, so the rate moves no
fault and no other noise. Each instalment is converted on the day it arrives.
"""

from __future__ import annotations

import numpy as np

from sandbox.world.table import Table


def plan(invoices: Table, rng: np.random.Generator, rate: float, plainly_paid: np.ndarray,
         foreign: np.ndarray) -> None:
    """Add `erp_in_entity_currency` to a chunk of newly planned invoices, in place; `foreign`
    marks invoices billed in another currency than their client's legal entity's."""
    u = rng.random(len(invoices))
    paid = plainly_paid | (invoices["instalments"] > 0)
    invoices["erp_in_entity_currency"] = paid & foreign & (invoices["transfer"] < 0) \
        & (invoices["overpaid"] == 0) & (u < rate)
