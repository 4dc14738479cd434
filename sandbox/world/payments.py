"""Payments as firms see them, beside the one card or bank-debit payment per invoice.

- `partial_payment`: the client pays by bank transfer in two or three instalments. Finance
  records each in the ERP as it arrives (the invoice `partial` until the last); billing marks
  the Stripe invoice paid out of band once the last one is in (no charge).
- `refund`: some weeks after paying, the client is granted a reduction: a credit note after
  payment, refunded on the charge (Stripe `post_payment` credit note with a refund, the charge's
  `amount_refunded`; the ERP posts an `out_refund` reversing the invoice).
- `one_transfer`: a client with several invoices paid in the same month settles them with one
  bank transfer, on the day the last was due to be paid: billing marks each Stripe invoice paid
  out of band; the ERP records one payment for their sum, matched with each of them.
- `full_credit`: an invoice issued in error is credited in full before anyone pays it: a Stripe
  credit note for its whole total (Stripe then shows it paid, with nothing collected) and an ERP
  `out_refund` reversing the whole invoice (`payment_state` reversed).
- `overpayment`: the client pays by a bank transfer of more than the invoice asks (the total
  rounded up to the next hundred): billing marks the Stripe invoice paid out of band; the ERP
  payment for the whole transfer is matched with the invoice, which shows paid, and stays partly
  unreconciled: the excess is the client's credit, left for finance to apply or return.

Each is drawn per eligible invoice (paid, no injected fault, a client the ERP knows, no dispute
and no pre-payment credit note) from the month's own payments-noise stream, so the rates move no fault.
"""

from __future__ import annotations

import numpy as np

from sandbox.world import tax
from sandbox.world.config import DAY, NEVER
from sandbox.world.table import Table

MAX_INSTALMENTS = 3
MIN_SPREAD = 10 * DAY  # an invoice paid sooner after it was finalised is paid at once


def plan(invoices: Table, rng: np.random.Generator, rates: dict[str, float], paid: int, fault_none: int,
         client_in_erp: np.ndarray) -> None:
    """Add the payment-noise columns to a chunk of newly planned invoices, in place."""
    n = len(invoices)
    u_partial, u_refund = rng.random(n), rng.random(n)
    parts = rng.integers(2, MAX_INSTALMENTS + 1, n)
    spread = np.sort(rng.uniform(0.15, 0.85, (n, MAX_INSTALMENTS)), axis=1)
    weights = rng.uniform(0.25, 0.6, (n, MAX_INSTALMENTS))
    erp_lag = (rng.uniform(0.1, 2, (n, MAX_INSTALMENTS)) * DAY).astype(np.int64)
    refund_share = rng.uniform(0.1, 0.5, n)
    refund_delay = (rng.uniform(5, 40, n) * DAY).astype(np.int64)
    refund_erp_lag = (rng.uniform(0.1, 3, n) * DAY).astype(np.int64)
    u_full, full_delay = rng.random(n), (rng.uniform(2, 20, n) * DAY).astype(np.int64)

    finalized, paid_at = invoices["finalized_at"], invoices["paid_at"]
    eligible = ((invoices["outcome"] == paid) & (invoices["fault"] == fault_none) & client_in_erp
                & (invoices["disputed_at"] >= NEVER) & (invoices["cn_at"] >= NEVER))
    partial = eligible & (paid_at - finalized >= MIN_SPREAD) & (u_partial < rates["partial_payment"])
    refund = eligible & ~partial & (u_refund < rates["refund"])
    full = eligible & ~partial & ~refund & (u_full < rates["full_credit"]) & (paid_at - finalized > 20 * DAY)

    # instalments: received over the invoice's payment period, the last on the day it is paid
    slot = np.arange(MAX_INSTALMENTS)[None, :]
    used = partial[:, None] & (slot < parts[:, None])
    last = slot == (parts[:, None] - 1)
    received = finalized[:, None] + (4 * DAY + spread * (paid_at - finalized - 4 * DAY)[:, None]).astype(np.int64)
    received = np.where(last, paid_at[:, None], received)
    share = np.where(used, weights, 0.0)
    share = share / np.maximum(share.sum(axis=1, keepdims=True), 1e-9)
    total = invoices["total"]
    amounts = np.floor(share * total[:, None]).astype(np.int64)
    amounts = np.where(last & used, total[:, None] - np.where(last, 0, amounts).sum(axis=1, keepdims=True), amounts)
    # set by `sandbox.facts` when the invoice was paid or written through the API
    invoices["paid_out_of_band"] = np.zeros(n, dtype=bool)
    invoices["api_written_at"] = np.full(n, NEVER, dtype=np.int64)
    invoices["cn_by_api"] = np.zeros(n, dtype=bool)  # the credit note is one a client issued through the API
    invoices["instalments"] = np.where(partial, parts, 0)
    invoices["instalment_amount"] = np.where(used, amounts, 0)
    invoices["erp_instalment_at"] = np.where(used, received + erp_lag, NEVER)
    invoices["erp_paid_at"] = np.where(partial, invoices["erp_instalment_at"].max(axis=1, where=used, initial=0),
                                       invoices["erp_paid_at"])

    # refunds: a credit note after payment, at the invoice's tax rate, refunded on the charge
    net = np.round(invoices["amount"] * refund_share).astype(np.int64)
    vat = tax.tax_on(net, invoices["tax_rate_bp"])
    cn_at = paid_at + refund_delay
    invoices["cn_after_payment"] = refund
    invoices["cn_at"] = np.where(refund, cn_at, invoices["cn_at"])
    invoices["cn_amount"] = np.where(refund, net + vat, invoices["cn_amount"])
    invoices["cn_tax"] = np.where(refund, vat, invoices["cn_tax"])
    invoices["erp_cn_at"] = np.where(refund, cn_at + refund_erp_lag, invoices["erp_cn_at"])

    # full credit: nobody pays; Stripe counts the credited invoice paid at the credit note
    credited_at = finalized + full_delay
    invoices["full_credit"] = full
    invoices["cn_at"] = np.where(full, credited_at, invoices["cn_at"])
    invoices["cn_amount"] = np.where(full, total, invoices["cn_amount"])
    invoices["cn_tax"] = np.where(full, invoices["tax"], invoices["cn_tax"])
    invoices["erp_cn_at"] = np.where(full, credited_at + refund_erp_lag, invoices["erp_cn_at"])
    for column in ("paid_at", "stripe_paid_at"):
        invoices[column] = np.where(full, credited_at, invoices[column])
    invoices["erp_paid_at"] = np.where(full, NEVER, invoices["erp_paid_at"])


def plainly_paid(invoices: Table, paid: int, fault_none: int, client_in_erp: np.ndarray) -> np.ndarray:
    """Paid in one go by a client the ERP knows, with no fault, dispute, credit note or instalment."""
    return ((invoices["outcome"] == paid) & (invoices["fault"] == fault_none) & client_in_erp
            & (invoices["disputed_at"] >= NEVER) & (invoices["cn_at"] >= NEVER) & (invoices["instalments"] == 0)
            & ~invoices["full_credit"] & (invoices["erp_paid_at"] < NEVER))


def one_transfer(invoices: Table, rng: np.random.Generator, rates: dict[str, float], first: int, paid: int,
                 fault_none: int, client_in_erp: np.ndarray) -> None:
    """Group a chunk's plainly paid invoices of one client into one bank transfer, in place:
    `transfer` is the global index of the group's first invoice (-1 outside any group)."""
    n = len(invoices)
    u = rng.random(n)
    invoices["transfer"] = np.full(n, -1, dtype=np.int64)
    candidates = np.flatnonzero(plainly_paid(invoices, paid, fault_none, client_in_erp))
    if len(candidates) < 2:
        return
    order = candidates[np.argsort(invoices["client"][candidates], kind="stable")]
    clients, starts, counts = np.unique(invoices["client"][order], return_index=True, return_counts=True)
    chosen = (counts >= 2) & (u[order[starts]] < rates.get("one_transfer", 0.0))
    for start, count in zip(starts[chosen].tolist(), counts[chosen].tolist()):
        members = order[start:start + count]
        paid_at = int(invoices["paid_at"][members].max())
        invoices["paid_at"][members] = invoices["stripe_paid_at"][members] = paid_at
        # finance records the transfer once it has every invoice it pays
        invoices["erp_paid_at"][members] = max(int(invoices["erp_paid_at"][members].max()),
                                               int(invoices["erp_posted_at"][members].max()))
        invoices["paid_out_of_band"][members] = True
        invoices["transfer"][members] = first + int(members.min())


def overpay(invoices: Table, rng: np.random.Generator, rates: dict[str, float], paid: int, fault_none: int,
            client_in_erp: np.ndarray) -> None:
    """Let some plainly paid invoices outside a grouped transfer be paid by a transfer of more
    than they ask, in place: `overpaid` is the excess in minor units (0 elsewhere)."""
    n = len(invoices)
    u = rng.random(n)
    chosen = (plainly_paid(invoices, paid, fault_none, client_in_erp) & (invoices["transfer"] < 0)
              & (u < rates.get("overpayment", 0.0)))
    total = invoices["total"]
    invoices["overpaid"] = np.where(chosen, (total // 10_000 + 1) * 10_000 - total, 0)
    invoices["paid_out_of_band"] |= chosen
