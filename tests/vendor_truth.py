"""What the CRM should show for each client, computed from the vendors' own records: the Stripe
and Harvest APIs as a connector sees them, the ERP's tables, and the sandbox's knowledge of which
records belong to which client. Never from the pipeline's models: this is the independent truth
the pushed CRM values are checked against.

The rules are the DECISIONLOG's ("What a client owes", "Tax", "CRM sync"), restated here in
plain Python so that a mistake in the SQL cannot hide in both places.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Iterator

import requests
from sqlalchemy import text

from sandbox import erp_schema, store
from sandbox.world.config import SCALES, WorldConfig, parse_date
from sandbox.world.derived import (
    ERP_CLIENT_PARTNER_BASE, ERP_DUPLICATE_PARTNER_BASE, HS_COMPANY_BASE, HS_DUPLICATE_COMPANY_BASE, HV_CLIENT_BASE,
    HV_DUPLICATE_CLIENT_BASE, derive,
)
from sandbox.world.codes import CF_DUPLICATE, DUP_ERP, DUP_HARVEST, DUP_HUBSPOT, DUP_STRIPE
from sandbox.world.firm import simulate

OPEN_DISPUTES = {"needs_response", "under_review", "warning_needs_response", "warning_under_review"}
COLLECTIONS_AFTER_DAYS = 90
CENT = Decimal("0.01")


AMOUNTS = ("ar_balance", "ar_overdue_amount", "lifetime_billed", "unbilled_wip_amount")
DATES = ("last_invoice_date", "last_payment_date")
OTHERS = ("ar_oldest_overdue_days", "financial_status", "billing_currency")


def crm_as_truth_types(values: dict[str, str | None]) -> dict[str, object]:
    """A company's CRM properties as HubSpot returns them (strings), in the truth's types."""
    out: dict[str, object] = {}
    for name in AMOUNTS:
        out[name] = Decimal(values[name] or "0").quantize(CENT)
    for name in DATES:
        out[name] = dt.date.fromisoformat(values[name]) if values[name] else None
    out["ar_oldest_overdue_days"] = int(float(values["ar_oldest_overdue_days"] or 0))
    out["financial_status"] = values["financial_status"]
    out["billing_currency"] = values["billing_currency"]
    return out


def money(minor: int) -> Decimal:
    return Decimal(minor) / 100


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


@dataclasses.dataclass
class ErpRates:
    """The ERP's own rate table, as a document of a day converts at it: the root company's rates
    (units of a currency per US dollar), a day taking the last one keyed on or before it."""

    days: dict[str, list[dt.date]]
    rates: dict[str, list[Decimal]]

    @classmethod
    def read(cls, con: Any) -> ErpRates:
        days: dict[str, list[dt.date]] = defaultdict(list)
        rates: dict[str, list[Decimal]] = defaultdict(list)
        for currency, day, rate in con.execute(text(
                "SELECT c.name, r.name, r.rate FROM res_currency_rate r JOIN res_currency c ON c.id = r.currency_id "
                "WHERE r.company_id = (SELECT min(id) FROM res_company WHERE parent_id IS NULL) ORDER BY r.name")):
            days[currency].append(_as_date(day))
            rates[currency].append(Decimal(str(rate)))
        return cls(dict(days), dict(rates))

    def per_dollar(self, currency: str, day: Any) -> Decimal:
        if currency == "USD":
            return Decimal(1)
        return self.rates[currency][bisect.bisect_right(self.days[currency], _as_date(day)) - 1]

    def converted(self, amount: Decimal, currency: str, into: str, day: Any) -> Decimal:
        """`amount` in `into` at the rate of `day`, to the cent (half up)."""
        if currency == into:
            return amount
        return (amount * self.per_dollar(into, day) / self.per_dollar(currency, day)).quantize(CENT, ROUND_HALF_UP)


@dataclasses.dataclass
class ClientRecords:
    """One real client's ids in each system, as the sandbox made them."""

    hubspot_company_ids: list[str]
    stripe_customer_ids: list[str]
    harvest_client_ids: list[int]
    erp_partner_ids: list[int]


def clients(data_dir: Path) -> list[ClientRecords]:
    """Every client of the sandbox firm, from the firm's own simulation at the sandbox clock."""
    con = store.connect(data_dir)
    try:
        saved = store.get_meta(con, "config")
        now = store.Clock(con).now_ms // 1000
    finally:
        con.close()
    config = WorldConfig(seed=saved["seed"], scale=SCALES[saved["scale"]], start=parse_date(saved["start"]),
                         fault_rates=saved["fault_rates"], noise_rates=saved["noise_rates"])
    world = simulate(config, now)
    d = derive(world)
    out = []
    c = world.clients
    for i in range(len(c)):
        duplicate = int(c["fault_dup_system"][i]) if c["fault"][i] == CF_DUPLICATE else -1
        out.append(ClientRecords(
            hubspot_company_ids=[str(HS_COMPANY_BASE + i)] + ([str(HS_DUPLICATE_COMPANY_BASE + i)]
                                                               if duplicate == DUP_HUBSPOT else []),
            stripe_customer_ids=[d.stripe_customer_id[i]] + ([d.duplicate_stripe_customer_id[i]]
                                                             if duplicate == DUP_STRIPE else []),
            harvest_client_ids=[HV_CLIENT_BASE + i] + ([HV_DUPLICATE_CLIENT_BASE + i] if duplicate == DUP_HARVEST else []),
            erp_partner_ids=[ERP_CLIENT_PARTNER_BASE + i] + ([ERP_DUPLICATE_PARTNER_BASE + i] if duplicate == DUP_ERP else []),
        ))
    return out


class VendorRecords:
    """Everything the truth needs, fetched once through the vendor APIs and the ERP tables."""

    def __init__(self, settings: dict[str, str], data_dir: Path):
        self.stripe = requests.Session()
        self.stripe.headers["Authorization"] = f"Bearer {settings['SOURCES__STRIPE__API_KEY']}"
        self.stripe_url = settings["SOURCES__STRIPE__BASE_URL"]
        self.harvest = requests.Session()
        self.harvest.headers.update({"Authorization": f"Bearer {settings['SOURCES__HARVEST__ACCESS_TOKEN']}",
                                     "Harvest-Account-Id": settings["SOURCES__HARVEST__ACCOUNT_ID"]})
        self.harvest_url = settings["SOURCES__HARVEST__BASE_URL"]
        self.invoices = list(self._stripe_list("/v1/invoices"))
        self.credit_notes = list(self._stripe_list("/v1/credit_notes"))
        self.charges = list(self._stripe_list("/v1/charges"))
        self.disputes = list(self._stripe_list("/v1/disputes"))
        self.customers = {c["id"]: c for c in self._stripe_list("/v1/customers")}
        self.projects = list(self._harvest_list("projects"))
        self.hubspot = requests.Session()
        self.hubspot.headers["Authorization"] = f"Bearer {settings['SOURCES__HUBSPOT__ACCESS_TOKEN']}"
        self.hubspot_url = settings["SOURCES__HUBSPOT__BASE_URL"]
        self.deals = list(self._hubspot_list("deals", "amount,deal_currency_code"))
        self.time_entries = list(self._harvest_list("time_entries"))
        con = store.connect(data_dir)
        try:
            engine = erp_schema.engine_for(store.erp_url(con, data_dir))
        finally:
            con.close()
        try:
            with engine.connect() as erp:
                self.erp_moves = [dict(r) for r in erp.execute(text(
                    "SELECT id, ref, state, move_type, payment_state FROM account_move")).mappings()]
                self.erp_payments = [dict(r) for r in erp.execute(text(
                    "SELECT p.id, p.date, p.state, p.partner_id, p.payment_reference, p.payment_type, p.amount, "
                    "c.name AS currency FROM account_payment p JOIN res_currency c ON c.id = p.currency_id"
                )).mappings()]
                self.erp_rates = ErpRates.read(erp)
                self.erp_links = [tuple(r) for r in erp.execute(text(
                    "SELECT invoice_id, payment_id FROM account_move__account_payment")).all()]
                self.erp_origins = dict(erp.execute(text(
                    "SELECT ref, invoice_origin FROM account_move WHERE move_type = 'out_invoice' AND ref IS NOT NULL"
                )).all())
                self.sale_orders = [dict(r) for r in erp.execute(text(
                    "SELECT o.id, o.name, o.client_order_ref, o.state, o.amount_total, c.name AS currency "
                    "FROM sale_order o JOIN res_currency c ON c.id = o.currency_id")).mappings()]
        finally:
            engine.dispose()

    def _stripe_list(self, path: str) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = self.stripe.get(f"{self.stripe_url}{path}", params=params, timeout=30).json()
            yield from page["data"]
            if not page["has_more"]:
                return
            params["starting_after"] = page["data"][-1]["id"]

    def _hubspot_list(self, object_type: str, properties: str) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 100, "properties": properties}
        while True:
            page = self.hubspot.get(f"{self.hubspot_url}/crm/v3/objects/{object_type}", params=params, timeout=30).json()
            yield from page["results"]
            if "paging" not in page:
                return
            params["after"] = page["paging"]["next"]["after"]

    def _harvest_list(self, resource: str) -> Iterator[dict[str, Any]]:
        url: str | None = f"{self.harvest_url}/{resource}?per_page=2000"
        while url:
            page = self.harvest.get(url, timeout=60).json()
            yield from page[resource]
            url = page["links"]["next"]


def expected_deal_values(records: VendorRecords) -> dict[str, dict[str, Any]]:
    """HubSpot deal id -> the deal properties it must show: its live ERP contract's total, what
    the contract's invoices billed (non-void, net of credit notes, before tax; an invoice names its
    contract in Stripe's `project_code` metadata, else in its ERP posting's origin), the rest, and
    whether sold amount and contract differ. Every document of a deal is in the deal's currency
    in the sandbox, which this asserts."""
    credited = defaultdict(int)
    for note in records.credit_notes:
        if note["status"] != "void":
            credited[note["invoice"]] += note["total_excluding_tax"]
    billed = defaultdict(Decimal)
    for invoice in records.invoices:
        if invoice["status"] in ("draft", "void"):
            continue
        code = (invoice["metadata"] or {}).get("project_code") or records.erp_origins.get(invoice["number"])
        if code:
            billed[code] += money(invoice["total_excluding_tax"] - credited[invoice["id"]])
    contracts = {}
    for order in sorted(records.sale_orders, key=lambda o: o["id"]):
        if order["state"] != "cancel" and order["client_order_ref"]:
            contracts[order["client_order_ref"]] = order
    out = {}
    for deal in records.deals:
        properties = deal["properties"]
        contract = contracts.get(deal["id"])
        if contract is None:
            out[deal["id"]] = {"contract_value_erp": None, "billed_to_date": Decimal(0),
                               "remaining_to_bill": None, "scope_mismatch": False}
            continue
        assert contract["currency"] == properties["deal_currency_code"], "a deal's documents share its currency"
        value = Decimal(str(contract["amount_total"])).quantize(CENT)
        done = billed[contract["name"]].quantize(CENT)
        sold = Decimal(properties["amount"] or "0")
        out[deal["id"]] = {"contract_value_erp": value, "billed_to_date": done, "remaining_to_bill": value - done,
                           "scope_mismatch": abs(sold - value) > CENT}
    return out


def unbilled_time(records: VendorRecords) -> dict[int, Decimal]:
    """Harvest client id -> approved billable time (hours x rate) that no finalised, non-void
    Stripe invoice billed: per project and month, the time lines carrying the project's code and
    a period starting in that month are subtracted, never below 0. Harvest's `is_billed` is a
    hand-set mark and plays no part."""
    approved: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    client_of: dict[str, int] = {}
    for project in records.projects:
        client_of[project["code"]] = project["client"]["id"]
    code_of = {p["id"]: p["code"] for p in records.projects}
    for entry in records.time_entries:
        if entry["is_closed"] and entry["billable"]:
            value = (Decimal(str(entry["hours"])) * Decimal(str(entry["billable_rate"] or 0))).quantize(CENT)
            approved[(code_of[entry["project"]["id"]], entry["spent_date"][:7])] += value
    billed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for invoice in records.invoices:
        if invoice["status"] in ("draft", "void"):
            continue
        assert not invoice["lines"]["has_more"], "a T&M invoice has a line per consultant, fewer than ten"
        for line in invoice["lines"]["data"]:
            if (line["metadata"] or {}).get("kind") == "time":
                month = _date(line["period"]["start"]).isoformat()[:7]
                billed[(line["metadata"]["project_code"], month)] += money(line["amount"])
    out: dict[int, Decimal] = defaultdict(Decimal)
    for key, value in approved.items():
        out[client_of[key[0]]] += max(value - billed.get(key, Decimal(0)), Decimal(0))
    return out


def _date(epoch: int | None) -> dt.date | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.timezone.utc).date()


def expected_company_values(records: VendorRecords, firm: list[ClientRecords], as_of: dt.date
                            ) -> dict[str, dict[str, Any]]:
    """HubSpot company id -> the financial properties it must show (amounts as Decimal, dates
    as date, None for a cleared property), for every client Stripe bills (its customer perhaps deleted since)."""
    credit_notes = defaultdict(list)
    for note in records.credit_notes:
        if note["status"] != "void":
            credit_notes[note["invoice"]].append(note)
    erp_invoice = {}
    for move in sorted(records.erp_moves, key=lambda m: m["id"]):
        if move["move_type"] == "out_invoice" and move["ref"] and move["state"] == "posted":
            erp_invoice.setdefault(move["ref"], move)
    paid_in_erp = {ref for ref, move in erp_invoice.items() if move["payment_state"] in ("paid", "in_payment")}
    move_ref = {m["id"]: m["ref"] for m in records.erp_moves if m["move_type"] == "out_invoice"}
    linked_numbers = {move_ref.get(invoice_id) for invoice_id, _ in records.erp_links}
    posted_payments = [p for p in records.erp_payments if p["state"] not in ("draft", "cancel", "canceled", "rejected")
                       and p["payment_type"] == "inbound"]
    # what the ERP ledger has applied to each invoice number: posted payments reconciled with it, in
    # the billing currency (a payment booked in another converted at the ERP's rate of its date)
    billed_in = {invoice["number"]: invoice["currency"].upper() for invoice in records.invoices if invoice["number"]}
    payments = {p["id"]: p for p in posted_payments}
    ledger_paid = defaultdict(Decimal)
    for invoice_id, payment_id in records.erp_links:
        number = move_ref.get(invoice_id)
        if payment_id in payments and number in erp_invoice and erp_invoice[number]["id"] == invoice_id:
            payment = payments[payment_id]
            ledger_paid[number] += records.erp_rates.converted(Decimal(str(payment["amount"])), payment["currency"],
                                                               billed_in.get(number, payment["currency"]),
                                                               payment["date"])
    by_customer = defaultdict(list)
    for invoice in records.invoices:
        by_customer[invoice["customer"]].append(invoice)
    number_of = {invoice["id"]: invoice["number"] for invoice in records.invoices}
    charges_of = defaultdict(list)
    for charge in records.charges:
        charges_of[charge["customer"]].append(charge)
    disputes_of = defaultdict(list)
    charge_customer = {c["id"]: c["customer"] for c in records.charges}
    for dispute in records.disputes:
        disputes_of[charge_customer.get(dispute["charge"])].append(dispute)
    wip = unbilled_time(records)

    out: dict[str, dict[str, Any]] = {}
    for client in firm:
        customer = next((records.customers[c] for c in client.stripe_customer_ids if c in records.customers), None)
        # a customer deleted in Stripe is listed no more; its invoices still bill the client
        billed_by = [i for c in client.stripe_customer_ids for i in by_customer.get(c, []) if i["status"] != "draft"]
        if customer is None and not billed_by:
            continue
        currency = (customer["currency"] if customer else billed_by[0]["currency"]).upper()
        balance = overdue = billed = Decimal(0)
        oldest = 0
        collections = False
        issued: list[dt.date] = []
        paid: list[dt.date] = []
        for cid in client.stripe_customer_ids:
            for invoice in by_customer.get(cid, []):
                if invoice["status"] == "draft":
                    continue
                assert invoice["currency"].upper() == currency, "the sandbox bills a client in one currency"
                notes = credit_notes.get(invoice["id"], [])
                if invoice["status"] != "void":
                    issued.append(_date(invoice["status_transitions"]["finalized_at"]))
                    billed += money(invoice["total_excluding_tax"] - sum(n["total_excluding_tax"] for n in notes))
                settled = invoice["status"] in ("paid", "void") or invoice["number"] in paid_in_erp
                owed = money(invoice["total"] - sum(n["total"] for n in notes)) - ledger_paid[invoice["number"]]
                if settled or owed <= 0:
                    continue
                balance += owed
                due = _date(invoice["due_date"])
                if due < as_of:
                    overdue += owed
                    oldest = max(oldest, (as_of - due).days)
                if invoice["status"] == "uncollectible" or (due < as_of and (as_of - due).days > COLLECTIONS_AFTER_DAYS):
                    collections = True
            for charge in charges_of.get(cid, []):
                if charge["status"] == "succeeded" and charge["paid"] and charge["amount"] - charge["amount_refunded"] > 0:
                    number = number_of.get(charge["invoice"])
                    if number not in linked_numbers and not any(p["payment_reference"] == number for p in posted_payments):
                        paid.append(_date(charge["created"]))
        paid += [p["date"] if isinstance(p["date"], dt.date) else dt.date.fromisoformat(str(p["date"])[:10])
                 for p in posted_payments if p["partner_id"] in client.erp_partner_ids]
        in_dispute = any(d["status"] in OPEN_DISPUTES for cid in client.stripe_customer_ids for d in disputes_of.get(cid, []))
        status = ("collections" if collections else "in_dispute" if in_dispute
                  else "overdue" if overdue > CENT else "good_standing")
        values = {
            "billing_currency": currency,
            "ar_balance": balance.quantize(CENT),
            "ar_overdue_amount": overdue.quantize(CENT),
            "ar_oldest_overdue_days": oldest,
            "last_invoice_date": max(issued, default=None),
            "last_payment_date": max(paid, default=None),
            "lifetime_billed": billed.quantize(CENT),
            "unbilled_wip_amount": sum((wip[h] for h in client.harvest_client_ids), Decimal(0))
            .quantize(CENT, rounding=ROUND_HALF_UP),
            "financial_status": status,
        }
        for company in client.hubspot_company_ids:
            out[company] = values
    return out

