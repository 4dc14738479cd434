"""Billing as Stripe holds it: customers, invoices, charges, credit notes, disputes and events.

Objects are rendered as they stand at the window's end; every state change inside the window
also becomes an event carrying the object as it was right after that change. Stripe keeps
events for 30 days, so changes older than that relative to the window's end leave no event.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np

from sandbox import stripe_objects as so
from sandbox.facts import stripe as stripe_facts
from sandbox.project import Window
from sandbox.world import names, tax
from sandbox.world.config import CURRENCIES, DAY, NEVER, SERVICES
from sandbox.world.derived import HS_COMPANY_BASE, Derived, invoice_prefix
from sandbox.world.codes import CF_DUPLICATE, DUP_STRIPE, MILESTONE, ORPHAN_STRIPE, RETAINER_FEE, TM_MONTHLY
from sandbox.world.firm import World

EVENT_RETENTION = 30 * DAY
DISPUTE_REASONS = ("general", "product_unacceptable", "product_not_received", "fraudulent")
CREDIT_REASONS = ("order_change", "product_unsatisfactory")


class StripeProjection:
    def __init__(self, world: World, derived: Derived, window: Window, written: list[dict[str, Any]] = ()):
        self.w, self.d, self.window = world, derived, window
        self.written = list(written)  # facts: writes made through the API
        self.seed = world.seed
        inv = world.invoices
        self.lines_of: dict[int, list[int]] = {}
        if len(world.invoice_lines):
            order = np.argsort(world.invoice_lines["invoice"], kind="stable")
            for line, invoice in zip(order.tolist(), world.invoice_lines["invoice"][order].tolist()):
                self.lines_of.setdefault(invoice, []).append(line)
        customer_key = np.where(inv["client"] >= 0, inv["client"], len(world.clients) + inv["orphan"]) \
            if len(inv) else np.array([], dtype=np.int64)
        self.invoices_of_customer: dict[int, np.ndarray] = {}
        if len(inv):
            order = np.argsort(customer_key, kind="stable")
            keys = customer_key[order]
            for key in np.unique(keys).tolist():
                self.invoices_of_customer[key] = order[keys == key]
        self.customer_key = customer_key

    # -- timestamps as Stripe will show them ------------------------------------------------------
    def created(self, ts: int) -> int:
        """What happens inside an advance window is stamped no earlier than the clock's floor."""
        ts = int(ts)
        return max(ts, self.window.floor_s) if self.in_window(ts) and not self.window.is_full else ts

    def in_window(self, ts: int) -> bool:
        w = self.window
        return (w.start is None or ts > w.start) and ts <= w.end

    def emits(self, ts: int) -> bool:
        return self.in_window(ts) and ts > self.window.end - EVENT_RETENTION

    # -- customers ---------------------------------------------------------------------------------
    def customer_doc(self, key: int, at: int) -> dict[str, Any]:
        w, d = self.w, self.d
        n_clients = len(w.clients)
        finalized = self._customer_invoices(key)
        sequence = int((w.invoices["finalized_at"][finalized] <= at).sum()) + 1 if len(finalized) else 1
        customer_id = d.stripe_customer_id[key] if key < n_clients else d.orphan_stripe_customer_id[key - n_clients]
        sequence += w.api_numbers_by(customer_id, at)
        if key < n_clients:
            i = key
            clients = w.clients
            country = d.stripe_country[i]
            metadata = {}
            if not clients["stripe_no_hubspot_ref"][i]:
                metadata["hubspot_company_id"] = str(HS_COMPANY_BASE + i)
            if not clients["stripe_no_erp_ref"][i] and d.erp_partner_at[i] < NEVER:
                metadata["erp_customer_ref"] = d.erp_ref[i]
            cid = d.stripe_customer_id[i]
            return so.customer(
                id=cid, created=self.created(d.stripe_customer_at[i]), name=d.system_names[i]["stripe"],
                email=f"accounts@{d.stripe_domain[i]}", currency=CURRENCIES[int(clients["currency"][i])].lower(),
                metadata=metadata, phone=f"{names.COUNTRIES[clients['country'][i]][3]} {int(clients['tax_number'][i]) % 10**9:09d}",
                address={"city": names.COUNTRIES[country][4][int(clients["variant"][i]) % 5], "country": country,
                         "line1": f"{int(clients['tax_number'][i]) % 200 + 1} {clients['base_name'][i].split()[0]} Street",
                         "postal_code": f"{int(clients['tax_number'][i]) % 90000 + 10000}"},
                invoice_prefix=invoice_prefix(cid), next_invoice_sequence=sequence,
                preferred_locales=["en"],
                tax_exempt="reverse" if clients["tax_treatment"][i] == tax.REVERSE_CHARGE else "none")
        k = key - n_clients
        orphans = w.orphans
        cid = d.orphan_stripe_customer_id[k]
        first, last = orphans["first_name"][k], orphans["last_name"][k]
        return so.customer(
            id=cid, created=self.created(orphans["created_at"][k]), name=f"{first} {last}",
            email=f"{names.email_local(first, last)}@gmail.com",
            currency=CURRENCIES[int(orphans["currency"][k])].lower(), invoice_prefix=invoice_prefix(cid),
            next_invoice_sequence=sequence)

    def _customer_invoices(self, key: int) -> np.ndarray:
        return self.invoices_of_customer.get(key, np.array([], dtype=np.int64))

    def duplicate_doc(self, i: int) -> dict[str, Any]:
        d, clients = self.d, self.w.clients
        cid = d.duplicate_stripe_customer_id[i]
        return so.customer(
            id=cid, created=self.created(d.duplicate_at[i]),
            name=names.duplicate_name(d.system_names[i]["stripe"], int(clients["variant"][i])),
            email=f"billing@{d.domain[i]}", currency=CURRENCIES[int(clients["currency"][i])].lower(),
            address={"country": d.stripe_country[i]}, invoice_prefix=invoice_prefix(cid))

    def extra_doc(self, i: int) -> dict[str, Any]:
        """The second customer billing created for a client by mistake, typed in by hand."""
        d, clients = self.d, self.w.clients
        cid = d.extra_stripe_customer_id[i]
        return so.customer(
            id=cid, created=self.created(d.extra_stripe_customer_at[i]), name=d.system_names[i]["stripe"],
            email=f"accounts@{d.stripe_domain[i]}", currency=CURRENCIES[int(clients["currency"][i])].lower(),
            address={"country": d.stripe_country[i]}, invoice_prefix=invoice_prefix(cid))

    # -- invoices and what hangs off them --------------------------------------------------------
    def invoice_doc(self, i: int, at: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        w, d = self.w, self.d
        inv = w.invoices
        currency = CURRENCIES[int(inv["currency"][i])].lower()
        invoice_id = d.stripe_invoice_id[i]
        customer = d.stripe_customer_of_invoice[i]
        period_start = int(inv["period_start_day"][i]) * DAY
        period_end = int(inv["period_end_day"][i]) * DAY + DAY - 1
        created = self.created(inv["created_at"][i])
        lines = []
        engagement = int(inv["engagement"][i])
        for line in self.lines_of.get(i, []):
            key = (self.seed, "line", line)
            amount = int(w.invoice_lines["amount"][line])
            lines.append(so.line_item(
                id=so.stripe_id("il", *key), invoice_item=so.stripe_id("ii", *key),
                amount=amount, currency=currency,
                description=w.invoice_lines["description"][line], period_start=period_start,
                period_end=period_end, price_created=created,
                metadata={"project_code": Derived.so_name(engagement),
                          "kind": "time" if w.invoice_lines["is_time"][line] else "fee_or_expenses"}
                if engagement >= 0 else None,
                tax_amounts=self._tax_amounts(i, amount, int(w.invoice_lines["tax"][line]))))
        finalized = int(inv["finalized_at"][i])
        paid = int(inv["stripe_paid_at"][i])
        voided = int(inv["voided_at"][i])
        uncollectible = int(inv["uncollectible_at"][i])
        if voided <= at:
            status = "void"
        elif paid <= at:
            status = "paid"
        elif uncollectible <= at:
            status = "uncollectible"
        elif finalized <= at:
            status = "open"
        else:
            status = "draft"
        credit = int(inv["cn_amount"][i]) if inv["cn_at"][i] <= at else 0
        after_payment = bool(inv["cn_after_payment"][i])
        out_of_band = bool(inv["instalments"][i] or inv["paid_out_of_band"][i])
        metadata = {}
        kind = int(inv["kind"][i])
        if engagement >= 0:
            if not inv["missing_project_code"][i]:
                metadata["project_code"] = Derived.so_name(engagement)
            deal = int(w.engagements["deal"][engagement])
            service = SERVICES[int(w.deals["kind"][deal])][int(w.deals["service"][deal])]
            month = np.datetime64(int(inv["period_start_day"][i]), "D").astype("datetime64[M]")
            description = {
                MILESTONE: f"{service}: milestone {int(inv['label'][i])} of 3",
                RETAINER_FEE: f"{service}: monthly retainer",
                TM_MONTHLY: f"{service}: time and materials, {month}",
            }[kind]
        else:
            description = "Strategy workshop"
        client = int(inv["client"][i])
        name = d.system_names[client]["stripe"] if client >= 0 else None
        doc = so.invoice(
            id=invoice_id, customer=customer, created=created, currency=currency, lines=lines, status=status,
            number=d.invoice_number[i] if finalized <= at else None, due_date=int(inv["due_at"][i]),
            period_start=period_start, period_end=period_end,
            finalized_at=self.created(finalized) if finalized <= at else None,
            paid_at=self.created(paid) if status == "paid" else None,
            voided_at=self.created(voided) if status == "void" else None,
            marked_uncollectible_at=self.created(uncollectible) if uncollectible <= at and status != "paid" else None,
            pre_payment_credit_notes_amount=0 if after_payment else credit,
            post_payment_credit_notes_amount=credit if after_payment else 0,
            paid_out_of_band=out_of_band and status == "paid",
            charge=d.stripe_charge_id[i] if status == "paid" and not out_of_band and not inv["full_credit"][i] else None,
            customer_name=name, customer_email=f"accounts@{d.stripe_domain[client]}" if client >= 0 else None,
            description=description, metadata=metadata, billing_reason="manual",
            footer=tax.REVERSE_CHARGE_NOTE if inv["tax_treatment"][i] == tax.REVERSE_CHARGE else None)
        return doc, lines

    def _tax_amounts(self, i: int, taxable: int, amount: int) -> list[dict[str, Any]]:
        """A line's VAT: none for an untaxed client, else the client's rate (0 when reverse-charged)."""
        inv = self.w.invoices
        treatment = int(inv["tax_treatment"][i])
        if treatment == tax.NO_TAX:
            return []
        rate = so.stripe_id("txr", self.seed, "vat", int(inv["tax_rate_bp"][i]), treatment)
        reason = "reverse_charge" if treatment == tax.REVERSE_CHARGE else "standard_rated"
        return [so.tax_amount(amount=amount, taxable_amount=taxable, tax_rate=rate, taxability_reason=reason)]

    def charge_doc(self, i: int, at: int) -> dict[str, Any]:
        inv, d = self.w.invoices, self.d
        client = int(inv["client"][i])
        currency = CURRENCIES[int(inv["currency"][i])].lower()
        after_payment = bool(inv["cn_after_payment"][i])
        refunded = int(inv["cn_amount"][i]) if after_payment and inv["cn_at"][i] <= at else 0
        return so.charge(
            id=d.stripe_charge_id[i], customer=d.stripe_customer_of_invoice[i],
            amount=int(inv["total"][i]) - (0 if after_payment else int(inv["cn_amount"][i])),
            amount_refunded=refunded, currency=currency,
            created=self.created(inv["stripe_paid_at"][i]), invoice=d.stripe_invoice_id[i],
            payment_method_type=None if client >= 0 else "card",
            description=f"Payment for invoice {d.invoice_number[i]}",
            billing_name=d.system_names[client]["stripe"] if client >= 0 else None,
            disputed=bool(inv["disputed_at"][i] <= at))

    def dispute_doc(self, i: int, at: int) -> dict[str, Any]:
        inv, d = self.w.invoices, self.d
        if inv["dispute_closed_at"][i] <= at:
            status = "won" if inv["dispute_won"][i] else "lost"
        elif inv["dispute_review_at"][i] <= at:
            status = "under_review"
        else:
            status = "needs_response"
        reviewed = inv["dispute_review_at"][i] <= at
        method = so.BANK_METHOD_BY_CURRENCY.get(CURRENCIES[int(inv["currency"][i])].lower(), "card") \
            if inv["client"][i] >= 0 else "card"
        return so.dispute(
            id=so.stripe_id("du", self.seed, "dispute", i), charge=d.stripe_charge_id[i],
            amount=int(inv["total"][i]) - int(inv["cn_amount"][i]),
            currency=CURRENCIES[int(inv["currency"][i])].lower(), created=self.created(inv["disputed_at"][i]),
            status=status, reason=DISPUTE_REASONS[int(inv["dispute_reason"][i])],
            has_evidence=bool(reviewed), submission_count=int(reviewed),
            payment_method_type="card" if method == "card" else None)

    def credit_note_doc(self, i: int) -> dict[str, Any]:
        inv, d = self.w.invoices, self.d
        cn_tax = int(inv["cn_tax"][i])
        net = int(inv["cn_amount"][i]) - cn_tax
        cn_id = so.stripe_id("cn", self.seed, "credit_note", i)
        taxes = self._tax_amounts(i, net, cn_tax)
        line = so.credit_note_line_item(id=so.stripe_id("cnli", self.seed, "credit_note", i), amount=net,
                                        description="Agreed reduction", tax_amounts=taxes)
        after_payment = bool(inv["cn_after_payment"][i])
        return so.credit_note(
            tax_amounts=taxes,
            refund=so.stripe_id("re", self.seed, "refund", i) if after_payment else None,
            id=cn_id, invoice=d.stripe_invoice_id[i], customer=d.stripe_customer_of_invoice[i],
            currency=CURRENCIES[int(inv["currency"][i])].lower(), created=self.created(inv["cn_at"][i]),
            number=f"{d.invoice_number[i]}-CN-01", lines=[line],
            type="post_payment" if after_payment else "pre_payment",
            reason=CREDIT_REASONS[i % 2], memo="Credit agreed with the client")

    # -- the projection ------------------------------------------------------------------------
    def write(self, con: sqlite3.Connection) -> dict[str, int]:
        w, d, window = self.w, self.d, self.window
        end = window.end
        docs: list[dict[str, Any]] = []
        lines: dict[str, list[dict[str, Any]]] = {}
        events: list[tuple[int, int, dict[str, Any]]] = []

        def emit(ts: int, order: int, kind: str, snapshot: dict[str, Any]) -> None:
            if self.emits(ts):
                created = self.created(ts)
                events.append((created, order, so.event(
                    id=so.stripe_id("evt", self.seed, snapshot["id"], kind), type=kind, created=created,
                    data_object=snapshot)))

        counts = {"customers": 0, "invoices": 0, "charges": 0, "credit_notes": 0, "disputes": 0}
        # Customers: new ones, and those whose invoice sequence moved on.
        inv = w.invoices
        n_clients = len(w.clients)
        keys = [(i, d.stripe_customer_at[i]) for i in range(n_clients) if d.stripe_customer_at[i] <= end]
        if len(w.orphans):
            keys += [(n_clients + k, w.orphans["created_at"][k]) for k in range(len(w.orphans))
                     if w.orphans["system"][k] == ORPHAN_STRIPE and w.orphans["created_at"][k] <= end]
        deleted = {f["id"] for f in self.written
                   if f["system"] == "stripe" and f["object"] == "customer" and f["action"] == "delete"}
        for key, created in keys:
            if (d.stripe_customer_id[key] if key < n_clients else d.orphan_stripe_customer_id[key - n_clients]) \
                    in deleted:
                continue  # deleted through the API: a tombstone from then on
            invoices = self._customer_invoices(key)
            new = self.in_window(int(created))
            moved = len(invoices) and any(self.in_window(int(t)) for t in inv["finalized_at"][invoices])
            if new or moved:
                doc = self.customer_doc(key, end)
                docs.append(doc)
                counts["customers"] += 1
                if new:
                    emit(int(created), 0, "customer.created", doc)
        dup = np.flatnonzero((w.clients["fault"] == CF_DUPLICATE) & (w.clients["fault_dup_system"] == DUP_STRIPE)
                             & window.changed(d.duplicate_at))
        for i in dup.tolist():
            doc = self.duplicate_doc(i)
            docs.append(doc)
            counts["customers"] += 1
            emit(int(d.duplicate_at[i]), 0, "customer.created", doc)
        tombstones = []
        extra = window.changed(d.extra_stripe_customer_at, d.extra_stripe_customer_deleted_at)
        for i in np.flatnonzero(extra).tolist():
            created, deleted_at = int(d.extra_stripe_customer_at[i]), int(d.extra_stripe_customer_deleted_at[i])
            doc = self.extra_doc(i)
            if self.in_window(created):
                docs.append(doc)
                counts["customers"] += 1
                emit(created, 0, "customer.created", doc)
            if deleted_at <= end:
                tombstones.append(doc["id"])
                emit(deleted_at, 0, "customer.deleted", doc)
        # Invoices and the objects their life creates.
        if len(inv):
            transitions = (inv["created_at"], inv["finalized_at"], inv["stripe_paid_at"], inv["voided_at"],
                           inv["uncollectible_at"], inv["cn_at"], inv["disputed_at"], inv["dispute_review_at"],
                           inv["dispute_closed_at"])
            # an invoice a client wrote to through the API is the API's from then on
            rows = np.flatnonzero(window.visible(inv["created_at"]) & window.changed(*transitions)
                                  & (inv["api_written_at"] >= NEVER))
        else:
            rows = np.array([], dtype=np.int64)
        for i in rows.tolist():
            doc, invoice_lines = self.invoice_doc(i, end)
            docs.append(doc)
            lines[doc["id"]] = invoice_lines
            counts["invoices"] += 1
            for ts, kinds in (
                (inv["created_at"][i], ("invoice.created",)),
                (inv["finalized_at"][i], ("invoice.finalized",)),
                (inv["cn_at"][i], ("invoice.updated",)),
                (inv["stripe_paid_at"][i], ("invoice.paid", "invoice.payment_succeeded")),
                (inv["voided_at"][i], ("invoice.voided",)),
                (inv["uncollectible_at"][i], ("invoice.marked_uncollectible",)),
            ):
                ts = int(ts)
                if ts < NEVER and self.emits(ts):
                    snapshot, _ = self.invoice_doc(i, ts)
                    for order, kind in enumerate(kinds, start=2):
                        emit(ts, order, kind, snapshot)
            paid = int(inv["stripe_paid_at"][i])
            refunded = int(inv["cn_at"][i]) if inv["cn_after_payment"][i] else NEVER
            if paid <= end and not inv["instalments"][i] and not inv["full_credit"][i] \
                    and not inv["paid_out_of_band"][i] and (
                    self.in_window(paid) or self.in_window(int(inv["disputed_at"][i])) or self.in_window(refunded)):
                charge = self.charge_doc(i, end)
                docs.append(charge)
                counts["charges"] += 1
                emit(paid, 1, "charge.succeeded", self.charge_doc(i, paid))
                emit(refunded, 1, "charge.refunded", self.charge_doc(i, refunded))
            disputed = int(inv["disputed_at"][i])
            if disputed <= end and paid <= end:
                steps = ((disputed, "charge.dispute.created"), (int(inv["dispute_review_at"][i]), "charge.dispute.updated"),
                         (int(inv["dispute_closed_at"][i]), "charge.dispute.closed"))
                if any(self.in_window(ts) for ts, _ in steps):
                    docs.append(self.dispute_doc(i, end))
                    counts["disputes"] += 1
                    for ts, kind in steps:
                        if ts <= end:
                            emit(ts, 1, kind, self.dispute_doc(i, ts))
            cn_at = int(inv["cn_at"][i])
            if self.in_window(cn_at) and not inv["cn_by_api"][i]:
                note = self.credit_note_doc(i)
                docs.append(note)
                counts["credit_notes"] += 1
                emit(cn_at, 1, "credit_note.created", note)
        overlay = stripe_facts.stripe_overlay(self.written)
        for doc in docs:
            if doc["id"] in overlay:
                stripe_facts.apply_overlay(doc, overlay[doc["id"]])
        docs.sort(key=lambda doc: doc["created"])
        so.put_objects(con, docs, lines)
        for customer_id in tombstones:
            so.delete_customer(con, customer_id)
        events.sort(key=lambda e: (e[0], e[1]))
        so.add_events(con, [e[2] for e in events])
        counts["events"] = len(events)
        return counts


def project(world: World, derived: Derived, window: Window, con: sqlite3.Connection,
            written: list[dict[str, Any]] = ()) -> dict[str, int]:
    return StripeProjection(world, derived, window, written).write(con)
