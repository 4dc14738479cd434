"""Stripe writes as facts.

- Invoice status writes: an invoice voided is never paid afterwards (and finance cancels it in
  the ERP), one paid out of band is not paid again by card nor recorded twice in the ERP, one
  marked uncollectible is not paid afterwards. A simulated draft finalised early is finalised then.
- Credit notes: one issued before payment, or after payment and refunded in full on the charge,
  becomes the invoice's credit note in the world (the client pays what is left; finance posts the
  credit in the ERP the next day). A credit note the world cannot hold (a second one, one left as
  customer balance or settled out of band, one voided) makes the invoice the API's: the
  projection leaves it as written and nothing planned for it afterwards happens.
- Field updates of customers and invoices (`stripe_overlay`): the fields written stay as written
  on every later projection of the object.
- Objects the API created (customers, invoice items, invoices, their credit notes) live in the
  API's state only; the projection never writes them. An invoice the API finalised takes its
  number from the customer's sequence, so the simulation numbers its own invoices after it.
- A customer deleted stays a tombstone: the projection never writes it again (its invoices
  stay). The simulation does not stop billing it: delete only a client with nothing left to bill.
"""

from __future__ import annotations

from typing import Any

from sandbox.stripe_objects import stripe_id
from sandbox.world.config import DAY, NEVER
from sandbox.world.codes import PAID, UNCOLLECTIBLE, VOIDED
from sandbox.world.firm import World

FINANCE_LAG = DAY  # finance follows a billing write in the ERP the next day, inside the SLA


def apply(world: World, facts: list[dict[str, Any]]) -> None:
    """Rewrite the invoices of the simulated world around the Stripe invoice writes."""
    inv = world.invoices
    if not facts or not len(inv):
        return
    index = {stripe_id("in", world.seed, "invoice", i): i for i in range(len(inv))}
    for fact in facts:
        if fact["system"] != "stripe" or fact["action"] == "update":
            continue
        invoice = fact["id"] if fact["object"] == "invoice" else fact.get("invoice")
        if invoice not in index:
            if fact["action"] == "finalize" and fact.get("customer"):
                world.api_finalized.setdefault(fact["customer"], []).append(int(fact["at"]))
            continue  # an invoice the API created lives in the API's state only
        i, at = index[invoice], int(fact["at"])
        if fact["object"] == "credit_note":
            _credit_note(inv, i, at, fact)
        elif fact["action"] == "finalize":
            inv["finalized_at"][i] = min(int(inv["finalized_at"][i]), at)
        else:
            inv["api_written_at"][i] = at
            if fact["action"] == "void":
                _void(inv, i, at)
            elif fact["action"] == "pay":
                _pay(inv, i, at, out_of_band=fact.get("out_of_band", False))
            elif fact["action"] == "mark_uncollectible":
                _write_off(inv, i, at)


def stripe_overlay(facts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Object id -> the fields written through the API: `fields` (top-level values) and
    `metadata` (keys, None where deleted), the latest value of each."""
    overlay: dict[str, dict[str, Any]] = {}
    for fact in facts:
        if fact["system"] == "stripe" and fact["action"] == "update":
            written = overlay.setdefault(fact["id"], {"fields": {}, "metadata": {}})
            written["fields"].update(fact["fields"])
            written["metadata"].update(fact["metadata"])
    return overlay


def apply_overlay(doc: dict[str, Any], written: dict[str, Any]) -> None:
    """Lay the written fields over a freshly projected object, in place."""
    doc.update(written["fields"])
    metadata = dict(doc.get("metadata") or {})
    for key, value in written["metadata"].items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    doc["metadata"] = metadata


def _credit_note(inv, i: int, at: int, fact: dict[str, Any]) -> None:
    """A credit note issued or voided through the API, held by the world where it can be."""
    simulated_before = inv["cn_at"][i] <= at and not inv["cn_by_api"][i]
    if fact["action"] == "create" and not simulated_before and not inv["cn_by_api"][i] \
            and not inv["instalments"][i] and (
            fact["type"] == "pre_payment" or fact["refund_amount"] == fact["amount"]):
        after_payment = fact["type"] == "post_payment"
        inv["cn_by_api"][i] = True
        inv["cn_after_payment"][i] = after_payment
        inv["cn_at"][i], inv["cn_amount"][i], inv["cn_tax"][i] = at, fact["amount"], fact["tax"]
        if inv["erp_posted_at"][i] < NEVER:
            inv["erp_cn_at"][i] = max(at, int(inv["erp_posted_at"][i])) + FINANCE_LAG
        if not after_payment and fact["amount"] >= inv["total"][i] and inv["paid_at"][i] > at:
            _cancel_after(inv, i, at)
            inv["full_credit"][i] = True
            inv["paid_at"][i] = inv["stripe_paid_at"][i] = at
            inv["erp_paid_at"][i] = NEVER
            inv["outcome"][i] = PAID
        return
    inv["api_written_at"][i] = at
    _cancel_after(inv, i, at)
    if inv["erp_paid_at"][i] > at:
        inv["erp_paid_at"][i] = NEVER
    if fact["action"] == "void" and inv["cn_by_api"][i]:
        inv["cn_at"][i], inv["cn_amount"][i], inv["cn_tax"][i] = NEVER, 0, 0
        if inv["erp_cn_at"][i] > at:
            inv["erp_cn_at"][i] = NEVER


def _cancel_after(inv, i: int, at: int) -> None:
    """What the client and finance would have done after `at` and now never do."""
    if inv["paid_at"][i] > at:
        inv["overpaid"][i] = 0
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
