"""The injected inconsistencies a reconciliation should find, as of the sandbox clock.

Written to `ground_truth.jsonl` in the data dir after every `generate` and `advance`; the
pipeline never reads it. One JSON object per fault: its `exception_type`, the `records` involved
(system, object, id), the `customer` it concerns, the `amount_at_risk` with its `currency`, when
the inconsistency became detectable (`detectable_at`, after the firm's own SLA), and `details`.

One fault, one entry: checks that follow from a more fundamental fault (an ERP invoice cannot
exist for a customer the ERP lacks) are not listed separately; the fundamental entry names the
records it covers. Every fault entry has `"kind": "fault"`.

Messy but valid records are listed too, so a test can prove none of them is reported: entries
with `"kind": "valid"`, each with the `noise` kind it belongs to, the `customer`, the `records`
it names and `why` they are no fault.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import orjson

from sandbox.stripe_objects import stripe_id
from sandbox.world import tax
from sandbox.world.config import (
    ACTIVATION_SLA_DAYS, CURRENCIES, DAY, ERP_POSTING_SLA_DAYS, ERP_SETUP_SLA_DAYS, NEVER,
)
from sandbox.world.derived import (
    ERP_CLIENT_PARTNER_BASE, ERP_DUPLICATE_PARTNER_BASE, ERP_INSTALMENT_PAYMENT_BASE, ERP_REFUND_BASE, HS_COMPANY_BASE, HS_DEAL_BASE,
    HS_DUPLICATE_COMPANY_BASE, HS_MERGED_COMPANY_BASE, HV_CLIENT_BASE, HV_DUPLICATE_CLIENT_BASE, HV_ORPHAN_CLIENT_BASE,
    HV_ENTRY_IN_ERROR_BASE, HV_ORPHAN_PROJECT_BASE, HV_PROJECT_BASE, HV_TIME_ENTRY_BASE, Derived,
)
from sandbox.world.codes import (
    ATTR_COUNTRY, ATTR_VAT, CF_ATTRIBUTE, CF_DUPLICATE, CF_MISSING_IN_ERP, DUP_ERP, DUP_HARVEST, DUP_HUBSPOT,
    DUP_STRIPE, EF_CONTRACT_AMENDED, EF_CONTRACT_TYPO, EF_NO_PROJECT, IF_AMOUNT, IF_MISSING_IN_ERP, IF_STATUS,
    IF_UNAPPLIED, ORPHAN_STRIPE, PAID, VOIDED,
)
from sandbox.world.firm import World


def record(system: str, obj: str, record_id: Any, **extra: Any) -> dict[str, Any]:
    return {"system": system, "object": obj, "id": str(record_id), **extra}


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _compact(vat: str) -> str:
    return "".join(ch for ch in vat.upper() if ch.isalnum())


def _money(minor: float) -> float:
    return round(float(minor) / 100, 2)


class GroundTruth:
    """Builds the fault list from the world as it stands at `at` (epoch s)."""

    def __init__(self, world: World, derived: Derived, at: int,
                 hubspot_written: dict[tuple[str, int], dict[str, str | None]] | None = None,
                 hubspot_merged: set[int] | None = None):
        self.world, self.d, self.at = world, derived, at
        self.hubspot_written = hubspot_written or {}  # properties written through HubSpot's API (facts)
        self.hubspot_merged = hubspot_merged or set()  # companies merged away through HubSpot's API

    def entries(self) -> list[dict[str, Any]]:
        found = [*self._clients(), *self._engagements(), *self._unbilled(), *self._invoices(), *self._orphans()]
        found.sort(key=lambda e: (e["detectable_at"], e["exception_type"], e["fault_id"]))
        valid = [*self._taxed(), *self._payments(), *self._identities(), *self._harvest_marks(), *self._corrections(),
                 *self._timing()]
        valid.sort(key=lambda e: e["valid_id"])
        return found + valid

    # -- helpers -------------------------------------------------------------------------
    def customer(self, client: int) -> dict[str, Any]:
        d = self.d
        return {
            "client_key": int(client),
            "name": self.world.clients["base_name"][client],
            "hubspot_company_id": str(HS_COMPANY_BASE + client),
            "erp_customer_ref": d.erp_ref[client] if d.erp_partner_at[client] <= self.at else None,
            "stripe_customer_id": d.stripe_customer_id[client] if d.stripe_customer_at[client] <= self.at else None,
        }

    def entry(self, fault_id: str, exception_type: str, detectable_at: int, client: int | None,
              records: list[dict[str, Any]], amount: float, currency: int, **details: Any) -> dict[str, Any]:
        return {
            "kind": "fault",
            "fault_id": fault_id,
            "exception_type": exception_type,
            "detectable_at": _iso(detectable_at),
            "customer": None if client is None else self.customer(client),
            "systems": sorted({r["system"] for r in records}),
            "records": records,
            "amount_at_risk": round(amount, 2),
            "currency": CURRENCIES[int(currency)],
            "details": details,
        }

    def crm_amount(self, engagement: int) -> float:
        """The deal amount HubSpot shows: as amended, or as someone wrote it through the API."""
        e = self.world.engagements
        written = self.hubspot_written.get(("deals", HS_DEAL_BASE + int(e["deal"][engagement])), {}).get("amount")
        if written:
            return float(written)
        amended = e["amended_at"][engagement] <= self.at
        return float(e["amended_amount"][engagement] if amended else e["amount"][engagement])

    # -- per client ----------------------------------------------------------------------------
    def _clients(self) -> Iterator[dict[str, Any]]:
        w, d, at = self.world, self.d, self.at
        clients, engagements = w.clients, w.engagements
        for i in np.flatnonzero(clients["fault"] == CF_MISSING_IN_ERP).tolist():
            since = d.first_won_at[i] + ERP_SETUP_SLA_DAYS * DAY
            if since > at:
                continue
            won = np.flatnonzero((engagements["client"] == i) & (engagements["close_at"] <= at))
            records = [record("hubspot", "company", HS_COMPANY_BASE + i)]
            records += [record("hubspot", "deal", HS_DEAL_BASE + int(engagements["deal"][e])) for e in won.tolist()]
            invoices = np.flatnonzero((w.invoices["client"] == i) & (w.invoices["finalized_at"] <= at))
            records += [record("stripe", "invoice", d.stripe_invoice_id[k], number=d.invoice_number[k])
                        for k in invoices.tolist()]
            amount = sum(self.crm_amount(e) for e in won.tolist())
            yield self.entry(f"customer_missing_in_erp:{i}", "customer_missing_in_erp", since, i, records,
                             amount, clients["currency"][i], won_deals=len(won))
        for i in np.flatnonzero(clients["fault"] == CF_ATTRIBUTE).tolist():
            attr = int(clients["fault_attr"][i])
            if attr == ATTR_VAT:
                written = self.hubspot_written.get(("companies", HS_COMPANY_BASE + i), {}).get("vat_number")
                if written and _compact(written) == _compact(d.vat[i]):
                    continue  # fixed in HubSpot through its API
                since, owner = d.erp_partner_at[i], "erp"
                records = [record("erp", "res_partner", ERP_CLIENT_PARTNER_BASE + i, ref=d.erp_ref[i]),
                           record("hubspot", "company", HS_COMPANY_BASE + i)]
                values = {"erp": d.vat[i], "hubspot": d.hubspot_vat[i]}
                name = "vat"
            elif attr == ATTR_COUNTRY:
                since, owner = max(d.erp_partner_at[i], d.stripe_customer_at[i]), "erp"
                records = [record("erp", "res_partner", ERP_CLIENT_PARTNER_BASE + i, ref=d.erp_ref[i]),
                           record("stripe", "customer", d.stripe_customer_id[i])]
                values = {"erp": clients["country"][i], "stripe": d.stripe_country[i]}
                name = "country"
            else:
                since, owner = d.stripe_customer_at[i], "hubspot"
                records = [record("hubspot", "company", HS_COMPANY_BASE + i),
                           record("stripe", "customer", d.stripe_customer_id[i])]
                values = {"hubspot": d.domain[i], "stripe": d.stripe_domain[i]}
                name = "domain"
            if since > at:
                continue
            yield self.entry(f"customer_attribute_mismatch:{i}", "customer_attribute_mismatch", since, i, records,
                             0.0, clients["currency"][i], attribute=name, owner_system=owner, values=values)
        for i in np.flatnonzero((clients["fault"] == CF_DUPLICATE) & (d.duplicate_at <= at)).tolist():
            system = int(clients["fault_dup_system"][i])
            if system == DUP_HUBSPOT and {HS_COMPANY_BASE + i, HS_DUPLICATE_COMPANY_BASE + i} & self.hubspot_merged:
                continue  # someone merged the two through HubSpot
            pair = {
                DUP_HUBSPOT: [record("hubspot", "company", HS_COMPANY_BASE + i),
                              record("hubspot", "company", HS_DUPLICATE_COMPANY_BASE + i)],
                DUP_ERP: [record("erp", "res_partner", ERP_CLIENT_PARTNER_BASE + i, ref=d.erp_ref[i]),
                          record("erp", "res_partner", ERP_DUPLICATE_PARTNER_BASE + i, ref=f"C{90000 + i:05d}")],
                DUP_STRIPE: [record("stripe", "customer", d.stripe_customer_id[i]),
                             record("stripe", "customer", d.duplicate_stripe_customer_id[i])],
                DUP_HARVEST: [record("harvest", "client", HV_CLIENT_BASE + i),
                              record("harvest", "client", HV_DUPLICATE_CLIENT_BASE + i)],
            }[system]
            yield self.entry(f"duplicate_customer:{i}", "duplicate_customer", int(d.duplicate_at[i]), i, pair,
                             0.0, clients["currency"][i], duplicated_in=pair[0]["system"])
        # a second HubSpot company typed in for a client is a duplicate until someone merges it
        typed, merged = clients["crm_duplicate_at"], clients["crm_merged_at"]
        for i in np.flatnonzero((typed <= at) & (merged > at)).tolist():
            if {HS_COMPANY_BASE + i, HS_MERGED_COMPANY_BASE + i} & self.hubspot_merged:
                continue
            pair = [record("hubspot", "company", HS_COMPANY_BASE + i),
                    record("hubspot", "company", HS_MERGED_COMPANY_BASE + i)]
            yield self.entry(f"duplicate_customer:merge:{i}", "duplicate_customer", int(typed[i]), i, pair,
                             0.0, clients["currency"][i], duplicated_in="hubspot", merged_later=True)
        # so is a second Stripe customer created by mistake, until billing deletes it
        extra_at, extra_deleted_at = d.extra_stripe_customer_at, d.extra_stripe_customer_deleted_at
        for i in np.flatnonzero((extra_at <= at) & (extra_deleted_at > at)).tolist():
            pair = [record("stripe", "customer", d.stripe_customer_id[i]),
                    record("stripe", "customer", d.extra_stripe_customer_id[i])]
            yield self.entry(f"duplicate_customer:stripe_delete:{i}", "duplicate_customer", int(extra_at[i]), i, pair,
                             0.0, clients["currency"][i], duplicated_in="stripe", deleted_later=True)

    # -- per engagement ---------------------------------------------------------------------------
    def _engagements(self) -> Iterator[dict[str, Any]]:
        w, d, at = self.world, self.d, self.at
        e = w.engagements
        if not len(e):
            return
        for k in np.flatnonzero(e["fault"] != 0).tolist():
            client = int(e["client"][k])
            deal = int(e["deal"][k])
            in_erp = d.erp_partner_at[client] < NEVER
            fault = int(e["fault"][k])
            deal_record = record("hubspot", "deal", HS_DEAL_BASE + deal)
            so_record = record("erp", "sale_order", k + 1, name=Derived.so_name(k))
            if fault in (EF_CONTRACT_AMENDED, EF_CONTRACT_TYPO):
                since = e["amended_at"][k] if fault == EF_CONTRACT_AMENDED else e["so_created_at"][k]
                since = max(int(since), int(e["so_created_at"][k]))
                if not in_erp or since > at:
                    continue
                crm = self.crm_amount(k)
                so = float(e["so_amount"][k])
                if abs(crm - so) <= 0.01:
                    continue  # the deal was corrected in HubSpot through its API
                yield self.entry(f"contract_value_mismatch:{k}", "contract_value_mismatch", since, client,
                                 [deal_record, so_record], abs(crm - so), e["currency"][k],
                                 crm_amount=crm, erp_amount=so,
                                 cause="deal amended after close" if fault == EF_CONTRACT_AMENDED
                                 else "sale order keyed with a different amount")
            elif fault == EF_NO_PROJECT:
                since = int(e["close_at"][k]) + ACTIVATION_SLA_DAYS * DAY
                if not in_erp or since > at:
                    continue  # without an ERP contract no system links the deal to a project
                records = [deal_record] + ([so_record] if e["so_created_at"][k] <= at else [])
                yield self.entry(f"won_deal_without_project:{k}", "won_deal_without_project", since, client,
                                 records, self.crm_amount(k), e["currency"][k], expected_project_code=Derived.so_name(k))

    def _unbilled(self) -> Iterator[dict[str, Any]]:
        w, at = self.world, self.at
        faults = w.unbilled_faults
        for k in np.flatnonzero(faults["visible_at"] <= at).tolist() if len(faults) else []:
            eng = int(faults["engagement"][k])
            client = int(w.engagements["client"][eng])
            entries = faults["entries"][k]
            month = np.datetime64(int(faults["month_day"][k]), "D").astype("datetime64[M]")
            records = [record("harvest", "project", HV_PROJECT_BASE + eng)]
            records += [record("harvest", "time_entry", HV_TIME_ENTRY_BASE + int(t)) for t in entries.tolist()]
            hours = float(w.time_entries["hours"][entries].sum())
            yield self.entry(f"approved_time_unbilled:{eng}:{month}", "approved_time_unbilled",
                             int(faults["visible_at"][k]), client, records, float(faults["amount"][k]),
                             w.engagements["currency"][eng], billing_month=str(month), hours=hours)

    # -- per invoice ---------------------------------------------------------------------------------
    def _invoices(self) -> Iterator[dict[str, Any]]:
        w, d, at = self.world, self.d, self.at
        inv = w.invoices
        if not len(inv):
            return
        for i in np.flatnonzero(inv["fault"] != 0).tolist():
            client = int(inv["client"][i])
            if client >= 0 and d.erp_partner_at[client] >= NEVER:
                continue  # covered by customer_missing_in_erp
            fault = int(inv["fault"][i])
            stripe_invoice = record("stripe", "invoice", d.stripe_invoice_id[i], number=d.invoice_number[i])
            erp_move = record("erp", "account_move", i + 1, name=d.erp_move_name[i])
            amount = int(inv["total"][i])
            currency = inv["currency"][i]
            if fault == IF_MISSING_IN_ERP:
                since = int(inv["finalized_at"][i]) + ERP_POSTING_SLA_DAYS * DAY
                if since > at or inv["voided_at"][i] <= at:
                    continue
                yield self.entry(f"invoice_missing_in_erp:{i}", "invoice_missing_in_erp", since, client,
                                 [stripe_invoice], _money(amount), currency)
            elif fault == IF_AMOUNT:
                since = int(d.erp_posted_at[i])
                if since > at:
                    continue
                erp_amount = int(inv["erp_amount"][i])
                yield self.entry(f"invoice_amount_mismatch:{i}", "invoice_amount_mismatch", since, client,
                                 [stripe_invoice, erp_move], _money(abs(amount - erp_amount)), currency,
                                 stripe_total=_money(amount), erp_total=_money(erp_amount))
            elif fault == IF_STATUS:
                if inv["outcome"][i] == VOIDED:
                    since = max(int(inv["voided_at"][i]), int(d.erp_posted_at[i])) + ERP_POSTING_SLA_DAYS * DAY
                    statuses = {"stripe": "void", "erp": "posted/not_paid"}
                else:
                    if inv["stripe_paid_at"][i] <= at:
                        continue  # billing has since been told (through its API): fixed
                    since = int(d.erp_paid_at[i])
                    statuses = {"stripe": "open", "erp": "posted/paid"}
                if since > at:
                    continue
                yield self.entry(f"invoice_status_mismatch:{i}", "invoice_status_mismatch", since, client,
                                 [stripe_invoice, erp_move], _money(amount), currency, statuses=statuses)
            elif fault == IF_UNAPPLIED and inv["outcome"][i] == PAID:
                since = int(inv["stripe_paid_at"][i]) + ERP_POSTING_SLA_DAYS * DAY
                if since > at:
                    continue
                paid = amount - int(inv["cn_amount"][i])
                records = [stripe_invoice, record("stripe", "charge", d.stripe_charge_id[i]), erp_move]
                if d.erp_paid_at[i] <= at:
                    records.append(record("erp", "account_payment", i + 1, name=d.erp_payment_name[i]))
                yield self.entry(f"payment_unapplied:{i}", "payment_unapplied", since, client, records,
                                 _money(paid), currency)

    # -- records nobody can tie to a client -----------------------------------------------------
    def _orphans(self) -> Iterator[dict[str, Any]]:
        w, d, at = self.world, self.d, self.at
        orphans = w.orphans
        for k in np.flatnonzero(orphans["created_at"] <= at).tolist() if len(orphans) else []:
            since = int(orphans["created_at"][k])
            if orphans["system"][k] == ORPHAN_STRIPE:
                inv = np.flatnonzero((w.invoices["orphan"] == k) & (w.invoices["finalized_at"] <= at)
                                     & (w.invoices["voided_at"] > at))
                records = [record("stripe", "customer", d.orphan_stripe_customer_id[k])]
                records += [record("stripe", "invoice", d.stripe_invoice_id[i], number=d.invoice_number[i])
                            for i in inv.tolist()]
                amount = _money(w.invoices["total"][inv].sum())
            else:
                records = [record("harvest", "client", HV_ORPHAN_CLIENT_BASE + k),
                           record("harvest", "project", HV_ORPHAN_PROJECT_BASE + k)]
                amount = 0.0
            yield self.entry(f"unmatched_record:{k}", "unmatched_record", since, None, records, amount,
                             orphans["currency"][k], name=f"{orphans['first_name'][k]} {orphans['last_name'][k]}")

    # -- messy but valid ------------------------------------------------------------------------------
    def valid(self, valid_id: str, noise: str, client: int | None, records: list[dict[str, Any]],
              why: str, **details: Any) -> dict[str, Any]:
        return {"kind": "valid", "valid_id": valid_id, "noise": noise,
                "customer": None if client is None else self.customer(client),
                "systems": sorted({r["system"] for r in records}), "records": records, "why": why,
                "details": details}

    def _taxed(self) -> Iterator[dict[str, Any]]:
        """Per client whose invoices carry VAT or name the reverse charge: its finalised invoices,
        whose totals exceed the pre-tax deal, sale order and time value by the tax."""
        w, d, at = self.world, self.d, self.at
        inv = w.invoices
        if not len(inv):
            return
        rows = np.flatnonzero((inv["tax_treatment"] != tax.NO_TAX) & (inv["finalized_at"] <= at))
        order = np.argsort(inv["client"][rows], kind="stable")
        rows = rows[order]
        clients = inv["client"][rows]
        for group in np.split(rows, np.flatnonzero(np.diff(clients)) + 1) if len(rows) else []:
            client = int(inv["client"][group[0]])
            treatment = int(inv["tax_treatment"][group[0]])
            rate = int(inv["tax_rate_bp"][group[0]]) / 100
            records = [record("stripe", "invoice", d.stripe_invoice_id[k], number=d.invoice_number[k],
                              total_excluding_tax=_money(inv["amount"][k]), tax=_money(inv["tax"][k]))
                       for k in group.tolist()]
            if treatment == tax.REVERSE_CHARGE:
                why = "cross-border B2B services to a validated VAT number: reverse-charged at 0%"
            else:
                why = f"VAT at {rate:g}% on top of the pre-tax price the deal and sale order state"
            yield self.valid(f"tax:{client}", "tax", client, records, why,
                             treatment=tax.TREATMENTS[treatment], rate_percent=rate)

    def _payments(self) -> Iterator[dict[str, Any]]:
        """Invoices paid in instalments (from the first one received), settled together by one
        transfer, credited in full, and refunded after payment."""
        w, d, at = self.world, self.d, self.at
        inv = w.invoices
        if not len(inv):
            return
        received = np.where(d.erp_posted_at[:, None] < NEVER, inv["erp_instalment_at"], NEVER) <= at
        for i in np.flatnonzero((inv["instalments"] > 0) & (received.any(axis=1) | (inv["stripe_paid_at"] <= at))
                                ).tolist():
            records = [record("stripe", "invoice", d.stripe_invoice_id[i], number=d.invoice_number[i])]
            if d.erp_posted_at[i] <= at:
                records.append(record("erp", "account_move", i + 1, name=d.erp_move_name[i]))
            records += [record("erp", "account_payment", ERP_INSTALMENT_PAYMENT_BASE + i * 10 + k,
                               amount=_money(inv["instalment_amount"][i, k]))
                        for k in np.flatnonzero(received[i]).tolist()]
            yield self.valid(f"partial_payment:{i}", "partial_payment", int(inv["client"][i]), records,
                             f"paid by bank transfer in {int(inv['instalments'][i])} instalments: the ERP shows it "
                             "partly paid until the last, billing marks it paid out of band once all are in",
                             instalments=int(inv["instalments"][i]), received=int(received[i].sum()))
        transfer = inv["transfer"]
        for first in np.unique(transfer[(transfer >= 0) & (inv["stripe_paid_at"] <= at)]).tolist():
            members = np.flatnonzero(transfer == first).tolist()
            records = [record("stripe", "invoice", d.stripe_invoice_id[k], number=d.invoice_number[k]) for k in members]
            if d.erp_paid_at[first] <= at:
                records.append(record("erp", "account_payment", first + 1,
                                      amount=_money(inv["total"][members].sum())))
            yield self.valid(f"one_transfer:{first}", "one_transfer", int(inv["client"][first]), records,
                             f"{len(members)} invoices settled by one bank transfer: each marked paid out of band "
                             "in Stripe, one ERP payment for their sum matched with each", invoices=len(members))
        for i in np.flatnonzero((inv["overpaid"] > 0) & (inv["stripe_paid_at"] <= at)).tolist():
            records = [record("stripe", "invoice", d.stripe_invoice_id[i], number=d.invoice_number[i])]
            if d.erp_paid_at[i] <= at:
                records.append(record("erp", "account_payment", i + 1,
                                      amount=_money(inv["total"][i] + inv["overpaid"][i])))
            yield self.valid(f"overpayment:{i}", "overpayment", int(inv["client"][i]), records,
                             "paid by a bank transfer of more than the invoice asked: paid out of band in Stripe, "
                             "the ERP payment matched with it, the excess left as the client's credit",
                             excess=_money(inv["overpaid"][i]))
        for i in np.flatnonzero(inv["full_credit"] & (inv["cn_at"] <= at)).tolist():
            records = [record("stripe", "invoice", d.stripe_invoice_id[i], number=d.invoice_number[i]),
                       record("stripe", "credit_note", stripe_id("cn", w.seed, "credit_note", i))]
            if d.erp_cn_at[i] <= at:
                records.append(record("erp", "account_move", ERP_REFUND_BASE + i, name=d.erp_refund_name[i]))
            yield self.valid(f"full_credit:{i}", "full_credit", int(inv["client"][i]), records,
                             "an invoice credited in full before payment: Stripe shows it paid with nothing "
                             "collected, the ERP shows it reversed; no payment is missing")
        for i in np.flatnonzero(inv["cn_after_payment"] & (inv["cn_at"] <= at)).tolist():
            records = [record("stripe", "invoice", d.stripe_invoice_id[i], number=d.invoice_number[i]),
                       record("stripe", "credit_note", stripe_id("cn", w.seed, "credit_note", i)),
                       record("stripe", "charge", d.stripe_charge_id[i])]
            if d.erp_cn_at[i] <= at:
                records.append(record("erp", "account_move", ERP_REFUND_BASE + i, name=d.erp_refund_name[i]))
            yield self.valid(f"refund:{i}", "refund", int(inv["client"][i]), records,
                             "a reduction granted after payment: a credit note refunded on the charge; the invoice "
                             "stays paid and bills less", refunded=_money(inv["cn_amount"][i]))

    def _identities(self) -> Iterator[dict[str, Any]]:
        """Homonyms (both clients' HubSpot companies), second domains and VATs typed loosely."""
        w, d, at = self.world, self.d, self.at
        c = w.clients
        visible = c["created_at"] <= at
        for i in np.flatnonzero((c["homonym_of"] >= 0) & visible).tolist():
            j = int(c["homonym_of"][i])
            records = [record("hubspot", "company", HS_COMPANY_BASE + j, domain=d.domain[j], vat=d.vat[j]),
                       record("hubspot", "company", HS_COMPANY_BASE + i, domain=d.domain[i], vat=d.vat[i])]
            yield self.valid(f"homonym:{i}", "homonym", i, records,
                             "two different clients with the same (or nearly the same) name: other VAT number, "
                             "other domain; they must not be merged", lender=self.customer(j),
                             near=bool(c["homonym_near"][i]))
        for i in np.flatnonzero(c["extra_domain"] & (d.stripe_customer_at <= at)).tolist():
            records = [record("hubspot", "company", HS_COMPANY_BASE + i, domain=d.domain[i],
                              additional_domain=d.extra_domain[i]),
                       record("stripe", "customer", d.stripe_customer_id[i], email_domain=d.extra_domain[i])]
            yield self.valid(f"extra_domain:{i}", "extra_domain", i, records,
                             "the client bills from a second domain of its own, listed in HubSpot's additional "
                             "domains: no attribute mismatch")
        typed = np.array([h != v for h, v in zip(d.hubspot_vat, d.vat)], dtype=bool)
        for i in np.flatnonzero((c["vat_format"] > 0) & typed & visible & d.hubspot_vat_shown).tolist():
            records = [record("hubspot", "company", HS_COMPANY_BASE + i, vat=d.hubspot_vat[i])]
            if d.erp_partner_at[i] <= at:
                records.append(record("erp", "res_partner", ERP_CLIENT_PARTNER_BASE + i, vat=d.vat[i]))
            yield self.valid(f"vat_format:{i}", "vat_format", i, records,
                             "the same VAT number, typed with spaces or without its country prefix")
        for i in np.flatnonzero(c["crm_merged_at"] <= at).tolist():
            yield self.valid(f"crm_merge:{i}", "crm_merge", i,
                             [record("hubspot", "company", HS_COMPANY_BASE + i),
                              record("hubspot", "company", HS_MERGED_COMPANY_BASE + i, merged_away=True)],
                             "a second company typed in for the client, since merged into the first: the second "
                             "id is gone, the first lists it in hs_merged_object_ids")
        for i in np.flatnonzero((c["crm_mistake_at"] <= at) & (c["created_at"] <= at)).tolist():
            restored = bool(c["crm_restored_at"][i] <= at)
            yield self.valid(f"crm_restore:{i}", "crm_restore", i, [record("hubspot", "company", HS_COMPANY_BASE + i)],
                             "the client's company archived by mistake and restored from the recycle bin days later: "
                             "the same id, live again" if restored else
                             "the client's company archived by mistake, in the recycle bin until someone restores it",
                             restored=restored)
        for i in np.flatnonzero(d.extra_stripe_customer_deleted_at <= at).tolist():
            yield self.valid(f"stripe_delete:{i}", "stripe_delete", i,
                             [record("stripe", "customer", d.stripe_customer_id[i]),
                              record("stripe", "customer", d.extra_stripe_customer_id[i], deleted=True)],
                             "a second Stripe customer created for the client by mistake, deleted days later before "
                             "anything was billed to it: gone, so no duplicate")
        for i in np.flatnonzero(d.erp_archived_at <= at).tolist():
            yield self.valid(f"erp_archive:{i}", "erp_archive", i,
                             [record("erp", "res_partner", ERP_CLIENT_PARTNER_BASE + i, ref=d.erp_ref[i])],
                             "the ERP partner of a client gone quiet, archived by finance: still the client's "
                             "customer master, not a missing one")

    def _harvest_marks(self) -> Iterator[dict[str, Any]]:
        """Project months whose time a project manager marked invoiced by hand in Harvest; where the
        mark covers a week the invoice left off, the month is a fault as well."""
        w, at = self.world, self.at
        t = w.time_entries
        rows = np.flatnonzero(t["marked_at"] <= at) if len(t) else np.array([], dtype=np.int64)
        if not len(rows):
            return
        month = t["spent_day"][rows].astype("datetime64[D]").astype("datetime64[M]")
        keys = t["engagement"][rows] * 100_000 + month.astype(np.int64)
        order = np.argsort(keys, kind="stable")
        rows, keys = rows[order], keys[order]
        starts = np.r_[0, np.flatnonzero(np.diff(keys)) + 1]
        for start, group in zip(starts.tolist(), np.split(rows, starts[1:])):
            eng, month_index = divmod(int(keys[start]), 100_000)
            wrong = int((t["billed_at"][group] > at).sum())
            label = str(np.datetime64(month_index, "M"))
            yield self.valid(f"harvest_marking:{eng}:{label}", "harvest_marking", int(w.engagements["client"][eng]),
                             [record("harvest", "project", HV_PROJECT_BASE + eng)],
                             "time marked invoiced by hand in Harvest, where invoicing is off: the mark is no "
                             "evidence of billing, the Stripe invoice is", billing_month=label,
                             marked_entries=len(group), marked_but_not_invoiced=wrong)

    def _corrections(self) -> Iterator[dict[str, Any]]:
        """Billable entries whose hours were corrected after approval, before the month's invoice."""
        t, at = self.world.time_entries, self.at
        if not len(t):
            return
        for row in np.flatnonzero((t["corrected_at"] <= at) & ~t["deleted"]).tolist():
            yield self.valid(f"harvest_correction:{row}", "harvest_correction",
                             int(self.world.engagements["client"][t["engagement"][row]]),
                             [record("harvest", "time_entry", HV_TIME_ENTRY_BASE + row)],
                             "hours corrected after approval (the week reopened and approved again) before the "
                             "month was invoiced: the invoice bills the corrected hours",
                             hours=float(t["hours"][row]), hours_logged=float(t["hours_logged"][row]))
        engagements = self.world.engagements
        for row in np.flatnonzero((t["moved_at"] <= at) & ~t["deleted"]).tolist():
            logged, final = int(t["logged_engagement"][row]), int(t["engagement"][row])
            yield self.valid(f"harvest_move:{row}", "harvest_move", int(engagements["client"][final]),
                             [record("harvest", "time_entry", HV_TIME_ENTRY_BASE + row),
                              record("harvest", "project", HV_PROJECT_BASE + logged, moved_from=True),
                              record("harvest", "project", HV_PROJECT_BASE + final)],
                             "time logged against another project of the consultant's, approved, then moved to "
                             "its own project before the month was invoiced: billed where it now stands")
        copies = self.world.entries_in_error
        for k in np.flatnonzero(copies["deleted_at"] <= at).tolist() if len(copies) else ():
            original = int(copies["original"][k])
            yield self.valid(f"harvest_delete:{k}", "harvest_delete",
                             int(engagements["client"][copies["engagement"][k]]),
                             [record("harvest", "time_entry", HV_ENTRY_IN_ERROR_BASE + k, deleted=True),
                              record("harvest", "time_entry", HV_TIME_ENTRY_BASE + original)],
                             "the same time logged twice; the copy approved with the week, then deleted once the "
                             "week was reopened, before the month was invoiced: Harvest no longer lists it",
                             hours=float(copies["hours"][k]))

    def _timing(self) -> Iterator[dict[str, Any]]:
        """Invoices the ERP posts (or whose payment it applies) days late but inside the SLA, and
        the days whose FX rate is off the usual calendar."""
        w, d, at = self.world, self.d, self.at
        inv = w.invoices
        slow = np.flatnonzero(inv["slow_posting"] & (inv["finalized_at"] <= at) & (inv["client"] >= 0)
                              & (d.erp_posted_at < NEVER)) if len(inv) else np.array([], dtype=np.int64)
        for i in slow.tolist():
            records = [record("stripe", "invoice", d.stripe_invoice_id[i], number=d.invoice_number[i])]
            if d.erp_posted_at[i] <= at:
                records.append(record("erp", "account_move", i + 1, name=d.erp_move_name[i]))
            yield self.valid(f"slow_posting:{i}", "slow_posting", int(inv["client"][i]), records,
                             "posted to the ERP (and its payment applied) days after billing, but inside the "
                             f"{ERP_POSTING_SLA_DAYS}-day posting SLA",
                             pending=bool(d.erp_posted_at[i] > at or d.erp_paid_at[i] > at >= inv["stripe_paid_at"][i]))
        fx = w.fx
        business = (fx["day"] + 3) % 7 < 5
        odd = np.flatnonzero((business != fx["published"]) & (fx["day"] * DAY <= at))
        for r in odd.tolist():
            day = int(fx["day"][r])
            label = str(np.datetime64(day, "D"))
            records = [record("erp", "res_currency_rate", day * 10 + k) for k in (1, 2)] if fx["published"][r] else []
            yield self.valid(f"fx_calendar:{label}", "fx_calendar", None, records,
                             "a rate published on a weekend" if fx["published"][r] else
                             "no rate published on a business day (a bank holiday): documents of the day convert "
                             "at the last rate before it", day=label)
        booked = np.flatnonzero(inv["erp_in_entity_currency"] & (d.erp_posted_at <= at)) if len(inv) \
            else np.array([], dtype=np.int64)
        for i in booked.tolist():
            yield self.valid(f"fx_rounding:{i}", "fx_rounding", int(inv["client"][i]),
                             [record("stripe", "invoice", d.stripe_invoice_id[i], number=d.invoice_number[i]),
                              record("erp", "account_move", i + 1, name=d.erp_move_name[i])],
                             "billed in one currency, booked in the legal entity's at the ERP's rate of the "
                             "accounting date: the amounts differ only by the rounding of the conversion")


def faults(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("kind", "fault") == "fault"]


def valid(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("kind") == "valid"]


def noise_served(entries: list[dict[str, Any]]) -> dict[str, int]:
    """How many records of each kind of valid mess the systems hold, for summaries."""
    served: dict[str, int] = {}
    for entry in valid(entries):
        label = entry["noise"]
        count = 1
        if label == "tax":
            label = "reverse-charged invoices" if entry["details"]["treatment"] == "reverse_charge" else "taxed invoices"
            count = len(entry["records"])
        label = {"partial_payment": "invoices paid in instalments", "refund": "refunds after payment",
                 "full_credit": "invoices credited in full",
                 "homonym": "homonym clients", "extra_domain": "clients with a second domain",
                 "vat_format": "VAT numbers typed loosely", "erp_archive": "ERP partners archived",
                 "crm_merge": "HubSpot companies merged", "crm_restore": "HubSpot companies restored",
                 "stripe_delete": "Stripe customers deleted",
                 "overpayment": "invoices overpaid", "one_transfer": "transfers settling several invoices",
                 "harvest_marking": "project months marked invoiced by hand in Harvest",
                 "harvest_correction": "Harvest hours corrected after approval",
                 "harvest_delete": "Harvest entries logged twice, the copy deleted",
                 "harvest_move": "Harvest entries moved to their project",
                 "fx_rounding": "invoices booked in another currency",
                 "slow_posting": "invoices posted late within the SLA",
                 "fx_calendar": "FX days off the business calendar"}.get(label, label)
        served[label] = served.get(label, 0) + count
    return dict(sorted(served.items()))


def write(path: Path, entries: list[dict[str, Any]]) -> None:
    """Replace the ground-truth file atomically: readers never see half a file."""
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("wb") as handle:
        for entry in entries:
            handle.write(orjson.dumps(entry) + b"\n")
    tmp.replace(path)


def read(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]
