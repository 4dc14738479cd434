"""How the firm invoices: monthly time-and-materials invoices from approved time, milestone and
retainer fees, each planned with its whole life (finalisation, payment or not, credit note,
dispute, ERP postings) and the payment and timing noise laid over it. A mixin of
`FirmSimulator`, which it shares its chunks, streams and rates with."""

from __future__ import annotations

import numpy as np

from sandbox.world import fx_posting, payments, slow_posting, tax
from sandbox.world.codes import (
    CF_MISSING_IN_ERP, IF_AMOUNT, IF_MISSING_IN_ERP, IF_NONE, IF_STATUS, IF_UNAPPLIED, MILESTONE, PAID,
    RETAINER_FEE, TM_MONTHLY, UNCOLLECTIBLE, VOIDED,
)
from sandbox.world.config import (
    CURRENCIES, DAY, ENTITIES, NEVER, PAYMENT_TERMS_DAYS, TM_BILLING_SLA_DAYS, TM_INVOICE_DAY,
)
from sandbox.world.draws import WORKING_HOURS_START, month_starts, next_weekday, uniform_seconds, weekday
from sandbox.world.table import Table

ENTITY_CURRENCY = np.array([CURRENCIES.index(e.currency) for e in ENTITIES])  # by legal entity


class Invoicing:
    def _tm_invoices(self, rng: np.random.Generator, m: int, m0: int) -> None:
        """Invoice last month's approved billable time of every T&M engagement."""
        if m == 0 or not self.chunks["time_entries"]:
            return
        prev_start = int(month_starts(m0 - DAY, m0 - DAY)[0]) // DAY
        entries = self.chunks["time_entries"][-1]
        first_entry = self.n["time_entries"] - len(entries)
        in_month = ((entries["spent_day"] >= prev_start) & (entries["spent_day"] < m0 // DAY) & entries["billable"]
                    & ~entries["deleted"])
        candidates = np.flatnonzero(in_month)
        issue_day = next_weekday(np.array([m0 // DAY + TM_INVOICE_DAY - 1]))[0]
        if not len(candidates):
            return
        engagements = self._all("engagements")
        eng_ids = np.unique(entries["engagement"][candidates])
        # Unbilled-time faults: one consultant's week of one engagement-month left off the invoice.
        faulty = eng_ids[rng.random(len(eng_ids)) < self.rates["approved_time_unbilled"]]
        excluded = np.zeros(len(entries), dtype=bool)
        fault_rows = []
        for e in faulty:
            rows = candidates[entries["engagement"][candidates] == e]
            user = rng.choice(np.unique(entries["user"][rows]))
            rows = rows[entries["user"][rows] == user]
            weeks = np.unique(entries["spent_day"][rows] - weekday(entries["spent_day"][rows]))
            week = rng.choice(weeks)
            rows = rows[entries["spent_day"][rows] - weekday(entries["spent_day"][rows]) == week]
            excluded[rows] = True
            fault_rows.append((e, prev_start, rows + first_entry,
                               float(np.round((entries["hours"][rows] * entries["rate"][rows]).sum(), 2))))
        billed = candidates[~excluded[candidates]]
        expenses = self.chunks["expenses"][-1] if self.chunks["expenses"] else Table()
        exp_rows = np.array([], dtype=np.int64)
        if len(expenses):
            exp_rows = np.flatnonzero((expenses["spent_day"] >= prev_start) & (expenses["spent_day"] < m0 // DAY)
                                      & expenses["billable"])
        invoice_engs = np.unique(np.concatenate([entries["engagement"][billed], expenses["engagement"][exp_rows]
                                                 if len(exp_rows) else np.array([], dtype=np.int64)]))
        n = len(invoice_engs)
        if n == 0:
            return
        # Lines: one per consultant (hours × rate), one for billable expenses.
        line_inv, line_desc, line_qty, line_unit, line_amount, line_time = [], [], [], [], [], []
        totals = np.zeros(n, dtype=np.int64)
        pos = {e: i for i, e in enumerate(invoice_engs.tolist())}
        key_user = entries["user"][billed]
        key_eng = entries["engagement"][billed]
        order = np.lexsort((key_user, key_eng))
        billed_sorted = billed[order]
        pairs = np.stack([key_eng[order], key_user[order]], axis=1)
        if len(pairs):
            boundaries = np.flatnonzero(np.any(np.diff(pairs, axis=0) != 0, axis=1)) + 1
            for group in np.split(billed_sorted, boundaries):
                e = int(entries["engagement"][group[0]])
                u = int(entries["user"][group[0]])
                hours = float(entries["hours"][group].sum())
                rate = float(entries["rate"][group[0]])
                amount = round(hours * rate * 100)
                i = pos[e]
                line_inv.append(i)
                name = f"{self.users['first_name'][u]} {self.users['last_name'][u]}"
                line_desc.append(f"Consulting services: {name}, {hours:g} h @ {rate:g}")
                line_qty.append(hours)
                line_time.append(True)
                line_unit.append(round(rate * 100))
                line_amount.append(amount)
                totals[i] += amount
        for e in np.unique(expenses["engagement"][exp_rows]) if len(exp_rows) else []:
            rows = exp_rows[expenses["engagement"][exp_rows] == e]
            amount = round(float(expenses["total_cost"][rows].sum()) * 100)
            i = pos[int(e)]
            line_inv.append(i)
            line_desc.append(f"Reimbursable expenses ({len(rows)} items)")
            line_qty.append(1.0)
            line_time.append(False)
            line_unit.append(amount)
            line_amount.append(amount)
            totals[i] += amount
        client = engagements["client"][invoice_engs]
        currency = engagements["currency"][invoice_engs]
        lines = Table(invoice_local=np.array(line_inv), description=np.array(line_desc, dtype=object),
                      is_time=np.array(line_time, dtype=bool),
                      quantity=np.array(line_qty), unit_amount=np.array(line_unit, dtype=np.int64),
                      amount=np.array(line_amount, dtype=np.int64))
        first_invoice = self._invoices(
            rng, invoice_engs, client, np.full(n, -1), currency, np.full(n, TM_MONTHLY), np.full(n, m),
            np.full(n, issue_day), np.full(n, prev_start), np.full(n, m0 // DAY - 1), totals,
            line_descriptions=lines)
        invoices = self.chunks["invoices"][-1]
        finalized = invoices["finalized_at"]
        entry_invoice = np.array([pos[int(e)] for e in entries["engagement"][billed]], dtype=np.int64)
        entries["billed_at"][billed] = finalized[entry_invoice]
        entries["invoice"][billed] = first_invoice + entry_invoice
        self._marks_by_hand(entries, billed, entry_invoice, invoice_engs, finalized, fault_rows, pos)
        if len(exp_rows):
            exp_invoice = np.array([pos[int(e)] for e in expenses["engagement"][exp_rows]], dtype=np.int64)
            expenses["billed_at"][exp_rows] = finalized[exp_invoice]
            expenses["invoice"][exp_rows] = first_invoice + exp_invoice
        for e, month_day, rows, amount in fault_rows:
            entry_ids = np.empty(1, dtype=object)
            entry_ids[0] = rows
            self._append("unbilled_faults", Table(
                engagement=np.array([e]), month_day=np.array([month_day]),
                entries=entry_ids, amount=np.array([amount]),
                visible_at=np.array([m0 + TM_BILLING_SLA_DAYS * DAY]),
            ))

    def _marks_by_hand(self, entries: Table, billed: np.ndarray, entry_invoice: np.ndarray, invoice_engs: np.ndarray,
                       finalized: np.ndarray, fault_rows: list, pos: dict[int, int]) -> None:
        """A project manager in the habit marks the month's entries invoiced in Harvest a few days
        after the Stripe invoice; some months they forget, and some mark the whole month, the
        week left off the invoice too (the habit is the `harvest_marking` noise)."""
        rng = self.harvest_noise
        n = len(invoice_engs)
        forgets, wrong = rng.random(n) < 0.2, rng.random(n) < 0.5
        marked_at = finalized + (rng.uniform(1, 5, n) * DAY).astype(np.int64)
        habit = self._all("engagements")["marks_by_hand"][invoice_engs] & ~forgets
        rows = billed[habit[entry_invoice]]
        entries["marked_at"][rows] = marked_at[entry_invoice[habit[entry_invoice]]]
        first_entry = self.n["time_entries"] - len(entries)
        for e, _, fault_entries, _ in fault_rows:
            i = pos.get(int(e))
            if i is not None and habit[i] and wrong[i]:
                entries["marked_at"][fault_entries - first_entry] = marked_at[i]

    def _invoices(self, rng: np.random.Generator, engagement: np.ndarray, client: np.ndarray, orphan: np.ndarray,
                  currency: np.ndarray, kind: np.ndarray, label: np.ndarray, issue_day: np.ndarray,
                  period_start_day: np.ndarray, period_end_day: np.ndarray, amount: np.ndarray,
                  line_descriptions: Table | None) -> int:
        """Plan the whole life of new invoices: issue, payment, credit note, dispute, ERP postings."""
        n = len(engagement)
        if line_descriptions is None:
            line_descriptions = self._single_lines(kind, label, amount)
        clients = self._all("clients")
        rate_bp = np.where(client >= 0, clients["tax_rate_bp"][np.maximum(client, 0)], 0) if len(clients) \
            else np.zeros(n, dtype=np.int64)
        treatment = np.where(client >= 0, clients["tax_treatment"][np.maximum(client, 0)], tax.NO_TAX) \
            if len(clients) else np.zeros(n, dtype=np.int64)
        line_tax = tax.tax_on(line_descriptions["amount"], rate_bp[line_descriptions["invoice_local"]])
        invoice_tax = np.bincount(line_descriptions["invoice_local"], weights=line_tax, minlength=n).astype(np.int64)
        total = amount.astype(np.int64) + invoice_tax
        created = issue_day * DAY + WORKING_HOURS_START + rng.integers(0, 4 * 3600, n)
        finalized = created + rng.integers(300, 3 * 3600, n)
        due = finalized + PAYMENT_TERMS_DAYS * DAY
        draw = rng.random(n)
        outcome = np.select([draw < 0.015, draw < 0.045], [VOIDED, UNCOLLECTIBLE], PAID)
        # a monthly T&M invoice is corrected with a credit note, never voided (a void would leave
        # the month's time unbilled until a new invoice)
        outcome = np.where((kind == TM_MONTHLY) & (outcome == VOIDED), PAID, outcome)
        timing = rng.random(n)
        paid_at = np.select(
            [timing < 0.62, timing < 0.9],
            [finalized + uniform_seconds(rng, 3, PAYMENT_TERMS_DAYS, n), due + uniform_seconds(rng, 1, 45, n)],
            due + uniform_seconds(rng, 45, 120, n))
        paid_at = np.where(outcome == PAID, paid_at, NEVER)
        voided_at = np.where(outcome == VOIDED, finalized + uniform_seconds(rng, 1, 10, n), NEVER)
        uncollectible_at = np.where(outcome == UNCOLLECTIBLE, due + uniform_seconds(rng, 90, 120, n), NEVER)
        cn_at = finalized + uniform_seconds(rng, 2, 15, n)
        has_cn = (rng.random(n) < 0.03) & (outcome != VOIDED) & (cn_at < paid_at) & (cn_at < uncollectible_at)
        cn_net = np.where(has_cn, np.round(amount * rng.uniform(0.1, 0.4, n)), 0).astype(np.int64)
        cn_tax = tax.tax_on(cn_net, rate_bp)
        disputed = (outcome == PAID) & (rng.random(n) < 0.03)
        disputed_at = np.where(disputed, paid_at + uniform_seconds(rng, 5, 40, n), NEVER)
        review_at = np.where(disputed, disputed_at + uniform_seconds(rng, 2, 10, n), NEVER)
        closed_at = np.where(disputed, review_at + uniform_seconds(rng, 25, 70, n), NEVER)
        r = self.rates
        fdraw = rng.random(n)
        cuts = np.cumsum([r["invoice_missing_in_erp"], r["invoice_amount_mismatch"],
                          r["invoice_status_mismatch"], r["payment_unapplied"]])
        fault = np.select([fdraw < cuts[0], fdraw < cuts[1], fdraw < cuts[2], fdraw < cuts[3]],
                          [IF_MISSING_IN_ERP, IF_AMOUNT, IF_STATUS, IF_UNAPPLIED], IF_NONE)
        fault = np.where((fault == IF_STATUS) & (outcome == UNCOLLECTIBLE), IF_NONE, fault)
        fault = np.where((fault == IF_UNAPPLIED) & (outcome != PAID), IF_NONE, fault)
        fault = np.where(orphan >= 0, IF_NONE, fault)
        # Status fault on a paid invoice: the client paid by bank transfer that finance recorded in
        # the ERP, but nobody marked the Stripe invoice paid.
        stripe_paid_at = np.where((fault == IF_STATUS) & (outcome == PAID), NEVER, paid_at)
        delta = np.round(amount * rng.uniform(0.01, 0.15, n) * rng.choice([-1, 1], n))
        erp_untaxed = np.where(fault == IF_AMOUNT, amount + delta, amount).astype(np.int64)
        erp_tax = np.where(fault == IF_AMOUNT, tax.tax_on(erp_untaxed, rate_bp), invoice_tax)
        posted_at = finalized + uniform_seconds(rng, 0.05, 3, n)
        first = self._append("invoices", Table(
            engagement=engagement,
            client=client,
            orphan=orphan,
            currency=currency,
            kind=kind,
            label=label,
            period_start_day=period_start_day,
            period_end_day=period_end_day,
            amount=amount.astype(np.int64),
            tax_treatment=treatment,
            tax_rate_bp=rate_bp,
            tax=invoice_tax,
            total=total,
            created_at=created,
            finalized_at=finalized,
            due_at=due,
            outcome=outcome,
            paid_at=paid_at,
            stripe_paid_at=stripe_paid_at,
            voided_at=voided_at,
            uncollectible_at=uncollectible_at,
            cn_at=np.where(has_cn, cn_at, NEVER),
            cn_amount=cn_net + cn_tax,
            cn_tax=cn_tax,
            disputed_at=disputed_at,
            dispute_review_at=review_at,
            dispute_closed_at=closed_at,
            dispute_won=rng.random(n) < 0.6,
            dispute_reason=rng.integers(0, 4, n),
            fault=fault,
            erp_amount=erp_untaxed + erp_tax,
            erp_tax=erp_tax,
            erp_posted_at=np.where(fault == IF_MISSING_IN_ERP, NEVER, posted_at),
            erp_paid_at=np.where((fault == IF_MISSING_IN_ERP) | (paid_at >= NEVER), NEVER,
                                 paid_at + uniform_seconds(rng, 0.1, 3, n)),
            erp_cn_at=np.where(has_cn & (fault != IF_MISSING_IN_ERP), cn_at + uniform_seconds(rng, 0.1, 3, n), NEVER),
            erp_cancel_at=np.where((outcome == VOIDED) & (fault != IF_STATUS) & (fault != IF_MISSING_IN_ERP),
                                   voided_at + uniform_seconds(rng, 0.1, 3, n), NEVER),
            missing_project_code=rng.random(n) < 0.05,
            method=rng.integers(0, 2, n),
        ))
        in_erp = (client >= 0) & (clients["fault"][np.maximum(client, 0)] != CF_MISSING_IN_ERP) if len(clients) \
            else np.zeros(n, dtype=bool)
        payments.plan(self.chunks["invoices"][-1], self.payment_noise, self.noise, PAID, IF_NONE, in_erp)
        slow_posting.plan(self.chunks["invoices"][-1], self.timing_noise, self.noise)
        payments.one_transfer(self.chunks["invoices"][-1], self.transfer_noise, self.noise, first, PAID, IF_NONE,
                              in_erp)
        payments.overpay(self.chunks["invoices"][-1], self.overpayment_noise, self.noise, PAID, IF_NONE, in_erp)
        foreign = (client >= 0) & (currency != ENTITY_CURRENCY[clients["entity"][np.maximum(client, 0)]]) \
            if len(clients) else np.zeros(n, dtype=bool)
        fx_posting.plan(self.chunks["invoices"][-1], self.fx_posting_noise, self.noise.get("fx_rounding", 0.0),
                        payments.plainly_paid(self.chunks["invoices"][-1], PAID, IF_NONE, in_erp), foreign)
        self._append("invoice_lines", Table(
            invoice=line_descriptions["invoice_local"] + first,
            description=line_descriptions["description"],
            quantity=line_descriptions["quantity"],
            unit_amount=line_descriptions["unit_amount"],
            amount=line_descriptions["amount"],
            tax=line_tax,
            is_time=line_descriptions["is_time"],
        ))
        return first

    @staticmethod
    def _single_lines(kind: np.ndarray, label: np.ndarray, amount: np.ndarray) -> Table:
        """One line per invoice for milestones, retainer fees and one-off workshops."""
        descriptions = []
        for k, lbl in zip(kind.tolist(), label.tolist()):
            if k == MILESTONE:
                descriptions.append(f"Milestone {lbl} of 3")
            elif k == RETAINER_FEE:
                descriptions.append(f"Monthly retainer fee, month {lbl}")
            else:
                descriptions.append("Strategy workshop")
        n = len(kind)
        return Table(invoice_local=np.arange(n), description=np.array(descriptions, dtype=object),
                     quantity=np.ones(n), unit_amount=amount.astype(np.int64), amount=amount.astype(np.int64),
                     is_time=np.zeros(n, dtype=bool))
