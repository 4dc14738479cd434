"""Stripe invoice status writes as facts: an invoice voided is never paid afterwards (and finance
cancels it in the ERP), one paid out of band is not paid again by card nor recorded twice in the
ERP, one marked uncollectible is not paid afterwards."""

from __future__ import annotations

from typing import Any

from sandbox.stripe_objects import stripe_id
from sandbox.world.config import DAY, NEVER
from sandbox.world.firm import PAID, UNCOLLECTIBLE, VOIDED, World

FINANCE_LAG = DAY  # finance follows a billing write in the ERP the next day, inside the SLA


def apply(world: World, facts: list[dict[str, Any]]) -> None:
    """Rewrite the invoices of the simulated world around the Stripe invoice writes."""
    inv = world.invoices
    if not facts or not len(inv):
        return
    index = {stripe_id("in", world.seed, "invoice", i): i for i in range(len(inv))}
    for fact in facts:
        if fact["system"] != "stripe" or fact["object"] != "invoice" or fact["id"] not in index:
            continue  # an invoice the API created lives in the API's state only
        i, at = index[fact["id"]], int(fact["at"])
        inv["api_written_at"][i] = at
        if fact["action"] == "void":
            _void(inv, i, at)
        elif fact["action"] == "pay":
            _pay(inv, i, at, out_of_band=fact.get("out_of_band", False))
        elif fact["action"] == "mark_uncollectible":
            _write_off(inv, i, at)


def _cancel_after(inv, i: int, at: int) -> None:
    """What the client and finance would have done after `at` and now never do."""
    for column in ("paid_at", "disputed_at", "dispute_review_at", "dispute_closed_at"):
        if inv[column][i] > at:
            inv[column][i] = NEVER
    if inv["cn_after_payment"][i] and inv["cn_at"][i] > at:
        inv["cn_at"][i], inv["cn_amount"][i], inv["cn_tax"][i] = NEVER, 0, 0
        inv["erp_cn_at"][i] = NEVER
    late = inv["erp_instalment_at"][i] > at
    inv["erp_instalment_at"][i][late] = NEVER
    inv["instalment_amount"][i][late] = 0


def _void(inv, i: int, at: int) -> None:
    _cancel_after(inv, i, at)
    inv["outcome"][i] = VOIDED
    inv["voided_at"][i] = at
    inv["stripe_paid_at"][i] = NEVER
    inv["uncollectible_at"][i] = NEVER if inv["uncollectible_at"][i] > at else inv["uncollectible_at"][i]
    if inv["erp_paid_at"][i] > at:
        inv["erp_paid_at"][i] = NEVER
    if inv["erp_posted_at"][i] < NEVER:
        inv["erp_cancel_at"][i] = max(at, int(inv["erp_posted_at"][i])) + FINANCE_LAG


def _write_off(inv, i: int, at: int) -> None:
    """Billing gave up on it: the client, as the firm now expects, does not pay it."""
    _cancel_after(inv, i, at)
    inv["outcome"][i] = UNCOLLECTIBLE
    inv["uncollectible_at"][i] = at
    inv["stripe_paid_at"][i] = NEVER
    if inv["erp_paid_at"][i] > at:
        inv["erp_paid_at"][i] = NEVER


def _pay(inv, i: int, at: int, *, out_of_band: bool) -> None:
    _cancel_after(inv, i, at)
    inv["paid_at"][i] = inv["stripe_paid_at"][i] = at
    inv["paid_out_of_band"][i] = out_of_band
    if inv["instalments"][i] and not (inv["erp_instalment_at"][i] < NEVER).any():
        inv["instalments"][i] = 0
    if inv["erp_paid_at"][i] > at and inv["erp_posted_at"][i] < NEVER and not inv["instalments"][i]:
        inv["erp_paid_at"][i] = max(at, int(inv["erp_posted_at"][i])) + FINANCE_LAG
    if inv["uncollectible_at"][i] > at:
        inv["uncollectible_at"][i] = NEVER
    inv["outcome"][i] = PAID
