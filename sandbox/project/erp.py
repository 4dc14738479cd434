"""The ERP as finance keeps it: customer masters, contracts, the AR ledger and FX rates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sandbox import erp_schema as erp
from sandbox.facts import erp as erp_facts
from sandbox.project import Window
from sandbox.world import names
from sandbox.world.config import CURRENCIES, DAY, ENTITIES, NEVER, SERVICES
from sandbox.world.derived import (
    ERP_CLIENT_PARTNER_BASE, ERP_DUPLICATE_PARTNER_BASE, ERP_INVOICE_CONTACT_BASE, ERP_MISC_PARTNER_ID,
    ERP_INSTALMENT_PAYMENT_BASE, ERP_REFUND_BASE, HS_DEAL_BASE, Derived,
)
from sandbox.world.codes import CF_DUPLICATE, DUP_ERP, IF_UNAPPLIED, PAID
from sandbox.world.firm import World

COUNTRY_IDS = {"US": 233, "GB": 231, "DE": 57, "FR": 75, "NL": 165}
CURRENCY_IDS = {"USD": 1, "GBP": 147, "EUR": 125}
LANG = {"US": "en_US", "GB": "en_GB", "DE": "de_DE", "FR": "fr_FR", "NL": "nl_NL"}
ADMIN_UID = erp_facts.ADMIN_UID
USERS_ROWS = "sandbox_erp_users_rows"  # key in the connection's `info`


def _sale_journal(company_id: int) -> int:
    return 10 + company_id


def _bank_journal(company_id: int) -> int:
    return 20 + company_id


def ts(epoch: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(epoch))


def day(epoch: int) -> dt.date:
    return ts(epoch).date()


def audit(created: int, written: int) -> dict[str, Any]:
    return {"create_uid": ADMIN_UID, "create_date": ts(created), "write_uid": ADMIN_UID, "write_date": ts(written)}


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows, replacing any with the same primary key (an ERP write is the record's new
    state), except rows an ERP user wrote (`sandbox.facts.erp`)."""
    rows = erp_facts.keep_theirs(table.name, rows, conn.info.get(USERS_ROWS, {}))
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    keys = [c.name for c in table.primary_key.columns]
    statement = dialect.insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    if updates:
        statement = statement.on_conflict_do_update(index_elements=keys, set_=updates)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    conn.execute(statement, rows)  # executemany: one compiled statement, many parameter sets


class Rates:
    """Units of each currency per USD by day, as the ERP's rate table holds them."""

    def __init__(self, world: World):
        fx = world.fx
        self.first_day = int(fx["day"][0])
        self.table = np.stack([fx[c] for c in CURRENCIES], axis=1)
        published = np.where(fx["published"], np.arange(len(fx)), 0)
        self.last_published = np.maximum.accumulate(published)  # row -> the last published row up to it

    def per(self, document: int, company: int, epoch: int) -> float:
        """Units of the document currency per unit of the company currency on that day."""
        row = min(max(int(epoch // DAY) - self.first_day, 0), len(self.table) - 1)
        return float(self.table[row, document] / self.table[row, company])

    def booked(self, amount: float, source: int, target: int, epoch: int) -> float:
        """`amount` in currency `source` converted to `target` as the ERP books it on that day: at
        the last rate its table holds on or before the day (6 decimals), rounded to the cent."""
        row = min(max(int(epoch // DAY) - self.first_day, 0), len(self.table) - 1)
        row = int(self.last_published[row])
        rates = [1.0 if c == 0 else round(float(self.table[row, c]), 6) for c in (source, target)]
        return round(amount * rates[1] / rates[0], 2)


def project(world: World, d: Derived, window: Window, conn: Connection,
            users_rows: dict[str, set[int]] | None = None) -> dict[str, int]:
    """Write what the ERP holds at the window's end for records that changed within it, leaving
    `users_rows` (table -> ids written by ERP users) as they wrote them."""
    conn.info[USERS_ROWS] = users_rows or {}
    counts: dict[str, int] = {}
    if window.is_full:
        counts.update(_setup(world, conn))
    counts["res_currency_rate"] = _rates(world, window, conn)
    counts["res_partner"] = _partners(world, d, window, conn)
    counts["sale_order"] = _sale_orders(world, d, window, conn)
    counts.update(_ledger(world, d, window, conn))
    return counts


def _setup(world: World, conn: Connection) -> dict[str, int]:
    """Currencies, countries, the firm's own companies and journals: there before history."""
    setup = world.config.start - 500 * DAY
    stamp = audit(setup, setup)
    symbols = {"USD": "$", "GBP": "£", "EUR": "€"}
    full = {"USD": "United States dollar", "GBP": "British pound", "EUR": "Euro"}
    upsert(conn, erp.res_currency, [
        {"id": CURRENCY_IDS[c], "name": c, "full_name": full[c], "symbol": symbols[c], "rounding": 0.01,
         "decimal_places": 2, "active": True, **stamp} for c in CURRENCIES])
    currency_of_country = {"US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "NL": "EUR"}
    upsert(conn, erp.res_country, [
        {"id": COUNTRY_IDS[code], "name": names.COUNTRY_NAMES[code], "code": code,
         "currency_id": CURRENCY_IDS[currency_of_country[code]], **stamp} for code in COUNTRY_IDS])
    partners, companies, journals = [], [], []
    for entity in ENTITIES:
        cid = entity.erp_company_id
        partners.append({
            "id": cid, "name": entity.name, "complete_name": entity.name, "parent_id": None, "is_company": True,
            "ref": None, "vat": entity.vat, "company_id": cid, "country_id": COUNTRY_IDS[entity.country],
            "street": None, "street2": None, "zip": None, "city": None,
            "email": f"finance.{entity.key}@concord-advisory.com", "phone": None,
            "website": "https://concord-advisory.com", "lang": LANG[entity.country], "active": True,
            "type": "contact", "commercial_partner_id": cid, "commercial_company_name": entity.name,
            "customer_rank": 0, "supplier_rank": 0, **stamp})
        companies.append({
            "id": cid, "name": entity.name, "partner_id": cid, "currency_id": CURRENCY_IDS[entity.currency],
            "parent_id": None if cid == 1 else 1, "active": True, "sequence": cid,
            "email": f"finance.{entity.key}@concord-advisory.com", "phone": None, **stamp})
        journals += [
            {"id": _sale_journal(cid), "name": "Customer Invoices", "code": "INV", "type": "sale",
             "company_id": cid, "currency_id": None, **stamp},
            {"id": _bank_journal(cid), "name": "Bank", "code": f"BNK{cid}", "type": "bank",
             "company_id": cid, "currency_id": CURRENCY_IDS[entity.currency], **stamp},
        ]
    misc = "Card sales - unidentified customers"
    partners.append({
        "id": ERP_MISC_PARTNER_ID, "name": misc, "complete_name": misc, "parent_id": None, "is_company": True,
        "ref": "MISC", "vat": None, "company_id": 1, "country_id": None, "street": None, "street2": None,
        "zip": None, "city": None, "email": None, "phone": None, "website": None, "lang": "en_US", "active": True,
        "type": "contact", "commercial_partner_id": ERP_MISC_PARTNER_ID, "commercial_company_name": misc,
        "customer_rank": 1, "supplier_rank": 0, **stamp})
    upsert(conn, erp.res_partner, partners)
    upsert(conn, erp.res_company, companies)
    upsert(conn, erp.account_journal, journals)
    return {"res_currency": len(CURRENCIES), "res_company": len(companies), "account_journal": len(journals)}


def _rates(world: World, window: Window, conn: Connection) -> int:
    """Daily rates of GBP and EUR against the root company's USD, on the days they were published
    (business days, bar the odd holiday; the odd weekend too)."""
    fx = world.fx
    posted = fx["day"] * DAY + 6 * 3600
    rows = np.flatnonzero(window.changed(posted) & fx["published"])
    records = []
    for r in rows.tolist():
        epoch = int(posted[r])
        for k, code in enumerate(CURRENCIES[1:], start=1):
            records.append({"id": int(fx["day"][r]) * 10 + k, "name": day(epoch), "rate": round(float(fx[code][r]), 6),
                            "currency_id": CURRENCY_IDS[code], "company_id": 1, **audit(epoch, epoch)})
    upsert(conn, erp.res_currency_rate, records)
    return len(records)


def _partners(world: World, d: Derived, window: Window, conn: Connection) -> int:
    clients = world.clients
    records = []
    for i in np.flatnonzero(window.visible(d.erp_partner_at)
                            & window.changed(d.erp_partner_at, d.erp_archived_at)).tolist():
        at = int(d.erp_partner_at[i])
        archived = d.erp_archived_at[i] <= window.end
        written = int(d.erp_archived_at[i]) if archived else at
        country = clients["country"][i]
        entity = ENTITIES[int(clients["entity"][i])]
        pid = ERP_CLIENT_PARTNER_BASE + i
        legal = d.system_names[i]["erp"]
        city = names.COUNTRIES[country][4][int(clients["variant"][i]) % 5]
        common = {"company_id": entity.erp_company_id, "country_id": COUNTRY_IDS[country], "street": None,
                  "street2": None, "zip": f"{int(clients['tax_number'][i]) % 90000 + 10000}", "city": city,
                  "lang": LANG[country], "active": not archived, "commercial_partner_id": pid,
                  "commercial_company_name": legal, "supplier_rank": 0, **audit(at, written)}
        records.append({"id": pid, "name": legal, "complete_name": legal, "parent_id": None, "is_company": True,
                        "ref": d.erp_ref[i], "vat": d.vat[i], "email": f"accounts@{d.domain[i]}",
                        "phone": f"{names.COUNTRIES[country][3]} {int(clients['tax_number'][i]) % 10**9:09d}",
                        "website": f"https://www.{d.domain[i]}", "type": "contact", "customer_rank": 1, **common})
        contact = f"{legal}, Accounts Payable"
        records.append({"id": ERP_INVOICE_CONTACT_BASE + i, "name": "Accounts Payable", "complete_name": contact,
                        "parent_id": pid, "is_company": False, "ref": None, "vat": d.vat[i],
                        "email": f"ap@{d.domain[i]}", "phone": None, "website": None, "type": "invoice",
                        "customer_rank": 0, **common})
    dup = np.flatnonzero((clients["fault"] == CF_DUPLICATE) & (clients["fault_dup_system"] == DUP_ERP)
                         & window.changed(d.duplicate_at))
    for i in dup.tolist():
        at = int(d.duplicate_at[i])
        country = clients["country"][i]
        pid = ERP_DUPLICATE_PARTNER_BASE + i
        name = names.duplicate_name(d.system_names[i]["erp"], int(clients["variant"][i]))
        records.append({
            "id": pid, "name": name, "complete_name": name, "parent_id": None, "is_company": True,
            "ref": f"C{90000 + i:05d}", "vat": d.vat[i], "company_id": ENTITIES[int(clients["entity"][i])].erp_company_id,
            "country_id": COUNTRY_IDS[country], "street": None, "street2": None, "zip": None, "city": None,
            "email": None, "phone": None, "website": None, "lang": LANG[country], "active": True, "type": "contact",
            "commercial_partner_id": pid, "commercial_company_name": name, "customer_rank": 1, "supplier_rank": 0,
            **audit(at, at)})
    upsert(conn, erp.res_partner, records)
    return len(records)


def _sale_orders(world: World, d: Derived, window: Window, conn: Connection) -> int:
    engagements, clients, deals = world.engagements, world.clients, world.deals
    if not len(engagements):
        return 0
    client = engagements["client"]
    in_erp = d.erp_partner_at[client] < NEVER
    created = engagements["so_created_at"]
    confirmed = created + engagements["so_confirm_lag"]
    rows = np.flatnonzero(in_erp & window.visible(created) & window.changed(created, confirmed))
    rates = Rates(world)
    orders, lines = [], []
    for e in rows.tolist():
        c = int(client[e])
        entity = ENTITIES[int(clients["entity"][c])]
        currency = int(engagements["currency"][e])
        is_confirmed = confirmed[e] <= window.end
        written = int(confirmed[e] if is_confirmed else created[e])
        amount = round(float(engagements["so_amount"][e]), 2)
        kind = int(engagements["kind"][e])
        deal = int(engagements["deal"][e])
        service = SERVICES[kind][int(deals["service"][deal])]
        state = "sale" if is_confirmed else "draft"
        stamp = audit(int(created[e]), written)
        orders.append({
            "id": e + 1, "name": Derived.so_name(e), "company_id": entity.erp_company_id,
            "partner_id": ERP_CLIENT_PARTNER_BASE + c, "partner_invoice_id": ERP_INVOICE_CONTACT_BASE + c,
            "state": state, "locked": False, "date_order": ts(written), "validity_date": day(int(created[e]) + 30 * DAY),
            "commitment_date": None,
            "client_order_ref": str(HS_DEAL_BASE + deal),
            "origin": None, "currency_id": CURRENCY_IDS[CURRENCIES[currency]],
            "currency_rate": round(rates.per(currency, CURRENCIES.index(entity.currency), written), 6),
            "amount_untaxed": amount, "amount_tax": 0.0, "amount_total": amount,
            "invoice_status": "to invoice" if is_confirmed else "no", "note": None, **stamp})
        lines.append({
            "id": e + 1, "order_id": e + 1, "sequence": 10, "company_id": entity.erp_company_id,
            "currency_id": CURRENCY_IDS[CURRENCIES[currency]], "order_partner_id": ERP_CLIENT_PARTNER_BASE + c,
            "state": state, "display_type": None, "name": f"{service} ({Derived.so_name(e)})",
            "product_uom_qty": 1.0, "price_unit": amount, "discount": 0.0, "price_subtotal": amount,
            "price_tax": 0.0, "price_total": amount, "qty_delivered": 0.0, "qty_invoiced": 0.0,
            "qty_to_invoice": 1.0 if is_confirmed else 0.0, "invoice_status": "to invoice" if is_confirmed else "no",
            "is_downpayment": False, **stamp})
    upsert(conn, erp.sale_order, orders)
    upsert(conn, erp.sale_order_line, lines)
    return len(orders)


def _ledger(world: World, d: Derived, window: Window, conn: Connection) -> dict[str, int]:
    """Customer invoices, their credit notes and the payments applied to them."""
    invoices, clients = world.invoices, world.clients
    if not len(invoices):
        return {"account_move": 0, "account_payment": 0}
    posted, paid, cn, cancel = d.erp_posted_at, d.erp_paid_at, d.erp_cn_at, d.erp_cancel_at
    instalments = np.where(posted[:, None] < NEVER, invoices["erp_instalment_at"], NEVER)
    rows = np.flatnonzero(window.visible(posted) & window.changed(posted, paid, cn, cancel, *instalments.T))
    rates = Rates(world)
    end = window.end
    transfer = invoices["transfer"]
    in_transfer = np.flatnonzero(transfer >= 0)
    transfer_total = np.zeros(len(invoices), dtype=np.int64)  # by the transfer's first invoice
    np.add.at(transfer_total, transfer[in_transfer], invoices["total"][in_transfer])
    moves, refunds, payments, links = [], [], [], []
    for i in rows.tolist():
        c = int(invoices["client"][i])
        entity = ENTITIES[int(clients["entity"][c])] if c >= 0 else ENTITIES[0]
        company = entity.erp_company_id
        currency = int(invoices["currency"][i])
        rate = rates.per(currency, CURRENCIES.index(entity.currency), int(posted[i]))
        erp_total = int(invoices["erp_amount"][i]) / 100
        erp_tax = int(invoices["erp_tax"][i]) / 100
        erp_untaxed = round(erp_total - erp_tax, 2)
        cn_amount = int(invoices["cn_amount"][i]) / 100
        cn_tax = int(invoices["cn_tax"][i]) / 100
        after_payment = bool(invoices["cn_after_payment"][i])
        paid_amount = (int(invoices["total"][i]) - (0 if after_payment else int(invoices["cn_amount"][i]))) / 100
        is_cancelled = cancel[i] <= end
        refund_applied = cn[i] <= end
        payment_posted = paid[i] <= end and invoices["outcome"][i] == PAID
        reconciled = payment_posted and invoices["fault"][i] != IF_UNAPPLIED
        received = [(k, int(instalments[i, k]), int(invoices["instalment_amount"][i, k]) / 100)
                    for k in range(instalments.shape[1]) if instalments[i, k] <= end]
        if invoices["instalments"][i]:
            payment_posted = reconciled = False  # paid in instalments, each its own payment
        residual = erp_total - (cn_amount if refund_applied and not after_payment else 0) \
            - (paid_amount if reconciled else 0) - sum(amount for _, _, amount in received)
        residual = max(round(residual, 2), 0.0)
        if is_cancelled:
            state, payment_state = "cancel", "not_paid"
        elif invoices["full_credit"][i] and refund_applied:
            state, payment_state = "posted", "reversed"
        elif residual == 0:
            state, payment_state = "posted", "paid"
        elif residual < erp_total:
            state, payment_state = "posted", "partial"
        else:
            state, payment_state = "posted", "not_paid"
        if invoices["erp_in_entity_currency"][i]:  # booked in the entity's currency (`fx_rounding`)
            booked_in = CURRENCIES.index(entity.currency)
            erp_total, erp_tax = (rates.booked(amount, currency, booked_in, int(posted[i]))
                                  for amount in (erp_total, erp_tax))
            erp_untaxed = round(erp_total - erp_tax, 2)
            # each instalment converted on the day it arrived; the last settles the invoice whatever
            # the rates did meanwhile (Odoo books the difference as an exchange gain or loss)
            received = [(k, at, rates.booked(amount, currency, booked_in, at)) for k, at, amount in received]
            if invoices["instalments"][i]:
                residual = 0.0 if residual == 0 else max(round(erp_total - sum(a for _, _, a in received), 2), 0.01)
            else:
                residual = erp_total if residual else 0.0
            paid_amount, currency, rate = erp_total, booked_in, 1.0
        written = int(window.last(posted[i:i + 1], cn[i:i + 1], cancel[i:i + 1],
                                  np.array([paid[i] if reconciled else -1]),
                                  *(instalments[i, k:k + 1] for k in range(instalments.shape[1])))[0])
        engagement = int(invoices["engagement"][i])
        move_id = i + 1
        number = d.invoice_number[i]
        partner = ERP_CLIENT_PARTNER_BASE + c if c >= 0 else ERP_MISC_PARTNER_ID
        moves.append({
            "id": move_id, "name": d.erp_move_name[i], "ref": number, "date": day(int(posted[i])),
            "state": state, "move_type": "out_invoice", "journal_id": _sale_journal(company), "company_id": company,
            "partner_id": partner, "commercial_partner_id": partner, "invoice_date": day(int(invoices["finalized_at"][i])),
            "invoice_date_due": day(int(invoices["due_at"][i])), "payment_reference": number,
            "currency_id": CURRENCY_IDS[CURRENCIES[currency]], "invoice_currency_rate": round(rate, 6),
            "amount_untaxed": erp_untaxed, "amount_tax": erp_tax, "amount_total": erp_total, "amount_residual": residual,
            "amount_untaxed_signed": round(erp_untaxed / rate, 2), "amount_tax_signed": round(erp_tax / rate, 2),
            "amount_total_signed": round(erp_total / rate, 2), "amount_total_in_currency_signed": erp_total,
            "amount_residual_signed": round(residual / rate, 2), "payment_state": payment_state,
            "reversed_entry_id": None,
            "invoice_origin": Derived.so_name(engagement) if engagement >= 0 else None,
            **audit(int(posted[i]), written)})
        if refund_applied:
            at = int(cn[i])
            refunds.append({
                "id": ERP_REFUND_BASE + i, "name": d.erp_refund_name[i], "ref": f"{number}-CN-01", "date": day(at),
                "state": "posted", "move_type": "out_refund", "journal_id": _sale_journal(company),
                "company_id": company, "partner_id": partner, "commercial_partner_id": partner,
                "invoice_date": day(at), "invoice_date_due": day(at), "payment_reference": f"{number}-CN-01",
                "currency_id": CURRENCY_IDS[CURRENCIES[currency]], "invoice_currency_rate": round(rate, 6),
                "amount_untaxed": round(cn_amount - cn_tax, 2), "amount_tax": cn_tax, "amount_total": cn_amount,
                "amount_residual": 0.0, "amount_untaxed_signed": -round((cn_amount - cn_tax) / rate, 2),
                "amount_tax_signed": -round(cn_tax / rate, 2),
                "amount_total_signed": -round(cn_amount / rate, 2), "amount_total_in_currency_signed": -cn_amount,
                "amount_residual_signed": 0.0, "payment_state": "paid", "reversed_entry_id": move_id,
                "invoice_origin": number, **audit(at, at)})
        if payment_posted and transfer[i] >= 0:
            payments += _transfer(world, d, i, int(transfer[i]), int(transfer_total[transfer[i]]) / 100, company,
                                  partner, currency, rate)
            links.append({"invoice_id": move_id, "payment_id": int(transfer[i]) + 1})
        elif payment_posted:
            at = int(paid[i])
            excess = int(invoices["overpaid"][i]) / 100  # the client's credit, matched with nothing
            payments.append({
                "id": move_id, "name": d.erp_payment_name[i], "date": day(at), "move_id": None,
                "journal_id": _bank_journal(company), "company_id": company,
                "state": "paid" if reconciled else "in_process", "amount": round(paid_amount + excess, 2),
                "payment_type": "inbound",
                "partner_type": "customer", "partner_id": partner, "currency_id": CURRENCY_IDS[CURRENCIES[currency]],
                "memo": number if reconciled else f"Payment {d.system_names[c]['erp'] if c >= 0 else 'card sale'}",
                "payment_reference": number if reconciled else None, "is_reconciled": reconciled and not excess,
                "is_matched": True, "amount_company_currency_signed": round((paid_amount + excess) / rate, 2),
                **audit(at, at)})
            if reconciled:
                links.append({"invoice_id": move_id, "payment_id": move_id})
        for k, at, amount in received:
            payment_id = ERP_INSTALMENT_PAYMENT_BASE + i * 10 + k
            payments.append({
                "id": payment_id, "name": f"{d.erp_payment_name[i]}-{k + 1}", "date": day(at), "move_id": None,
                "journal_id": _bank_journal(company), "company_id": company, "state": "paid", "amount": amount,
                "payment_type": "inbound", "partner_type": "customer", "partner_id": partner,
                "currency_id": CURRENCY_IDS[CURRENCIES[currency]], "memo": f"{number} instalment {k + 1}",
                "payment_reference": number, "is_reconciled": True, "is_matched": True,
                "amount_company_currency_signed": round(amount / rate, 2), **audit(at, at)})
            links.append({"invoice_id": move_id, "payment_id": payment_id})
    upsert(conn, erp.account_move, moves)
    upsert(conn, erp.account_move, refunds)
    upsert(conn, erp.account_payment, payments)
    upsert(conn, erp.account_move__account_payment, links)
    return {"account_move": len(moves) + len(refunds), "account_payment": len(payments)}



def _transfer(world: World, d: Derived, i: int, first: int, amount: float, company: int, partner: int,
              currency: int, rate: float) -> list[dict[str, Any]]:
    """The one payment of a transfer settling several invoices, written with its first invoice."""
    if i != first:
        return []
    invoices = world.invoices
    at = int(d.erp_paid_at[i])
    numbers = ", ".join(d.invoice_number[k] for k in np.flatnonzero(invoices["transfer"] == first).tolist())
    return [{
        "id": first + 1, "name": d.erp_payment_name[first], "date": day(at), "move_id": None,
        "journal_id": _bank_journal(company), "company_id": company, "state": "paid", "amount": amount,
        "payment_type": "inbound", "partner_type": "customer", "partner_id": partner,
        "currency_id": CURRENCY_IDS[CURRENCIES[currency]], "memo": f"Transfer for {numbers}",
        "payment_reference": None, "is_reconciled": True, "is_matched": True,
        "amount_company_currency_signed": round(amount / rate, 2), **audit(at, at)}]
