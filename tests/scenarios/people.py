"""The people of a firm, acting on its systems the way they do at work: sales in HubSpot, billing
in Stripe, project managers in Harvest, finance in the ERP's tables. Scenario tests read as what
these people did.

HubSpot and Stripe writes go through the sandbox's vendor APIs at once. Finance's ERP writes are
queued and made after the firm has moved on in time (`Erp.flush`), each stamped at the sandbox
clock then, as an ERP user's edit would be.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Callable

import requests
from sqlalchemy import Engine, text

from tests.vendor_truth import ErpRates

ASSOCIATE_DEAL_TO_COMPANY = 5
FINANCE_UID = 7  # the ERP user finance's edits are made as (the sandbox writes as user 2)


class Sales:
    """HubSpot, through its CRM API."""

    def __init__(self, settings: dict[str, str]):
        self.url = settings["SOURCES__HUBSPOT__BASE_URL"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {settings['SOURCES__HUBSPOT__ACCESS_TOKEN']}"

    def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.session.request(method, f"{self.url}{path}", json=body, timeout=30)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def creates_company(self, name: str, **properties: str) -> str:
        return self._call("POST", "/crm/v3/objects/companies", {"properties": {"name": name, **properties}})["id"]

    def edits_company(self, company_id: str, **properties: str) -> None:
        self._call("PATCH", f"/crm/v3/objects/companies/{company_id}", {"properties": properties})

    def archives_company(self, company_id: str) -> None:
        response = self.session.delete(f"{self.url}/crm/v3/objects/companies/{company_id}", timeout=30)
        assert response.status_code == 204, response.text

    def restores_company(self, company_id: str) -> None:
        """From the recycle bin, in HubSpot's web app (the CRM API has no restore)."""
        self._call("POST", f"/web/objects/companies/{company_id}/restore", {})

    def merges_companies(self, kept: str, gone: str) -> None:
        self._call("POST", "/crm/v3/objects/companies/merge", {"primaryObjectId": kept, "objectIdToMerge": gone})

    def wins_deal(self, company_id: str, amount: str, currency: str, closed: dt.datetime, **properties: str) -> str:
        body = {
            "properties": {"dealname": f"Engagement {amount} {currency}", "amount": amount, "dealstage": "closedwon",
                           "pipeline": "default", "deal_currency_code": currency,
                           "closedate": closed.strftime("%Y-%m-%dT%H:%M:%S.000Z"), **properties},
            "associations": [{"to": {"id": company_id}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": ASSOCIATE_DEAL_TO_COMPANY}]}],
        }
        return self._call("POST", "/crm/v3/objects/deals", body)["id"]

    def edits_deal(self, deal_id: str, **properties: str) -> None:
        self._call("PATCH", f"/crm/v3/objects/deals/{deal_id}", {"properties": properties})


class Billing:
    """Stripe, through its API (amounts in minor units, as Stripe takes them)."""

    def __init__(self, settings: dict[str, str]):
        self.url = settings["SOURCES__STRIPE__BASE_URL"]
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {settings['SOURCES__STRIPE__API_KEY']}"

    def post(self, path: str, **form: str) -> dict[str, Any]:
        response = self.session.post(f"{self.url}{path}", data=form, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self, path: str) -> dict[str, Any]:
        return self.session.get(f"{self.url}{path}", timeout=30).json()

    def creates_customer(self, name: str, email: str, **form: str) -> str:
        return self.post("/v1/customers", name=name, email=email, **form)["id"]

    def edits_customer(self, customer_id: str, **form: str) -> None:
        self.post(f"/v1/customers/{customer_id}", **form)

    def deletes_customer(self, customer_id: str) -> None:
        response = self.session.delete(f"{self.url}/v1/customers/{customer_id}", timeout=30)
        assert response.status_code == 200 and response.json()["deleted"], response.text

    def creates_tax_rate(self, name: str, percentage: str, country: str) -> str:
        return self.post("/v1/tax_rates", display_name=name, percentage=percentage, inclusive="false",
                         country=country, jurisdiction=country, tax_type="vat")["id"]

    def invoices(self, customer_id: str, amount: int, currency: str, description: str = "Advisory services",
                 tax_rate: str | None = None) -> dict:
        """A one-line invoice of `amount` before tax, finalised and sent (due in 30 days)."""
        self.post("/v1/invoiceitems", customer=customer_id, amount=str(amount), currency=currency,
                  description=description, **({"tax_rates[]": tax_rate} if tax_rate else {}))
        draft = self.post("/v1/invoices", customer=customer_id, currency=currency, collection_method="send_invoice",
                          days_until_due="30", pending_invoice_items_behavior="include")
        return self.post(f"/v1/invoices/{draft['id']}/finalize")

    def time_billed_on(self, invoice_id: str) -> int:
        """What an invoice bills for time (its lines of kind `time`), in minor units."""
        lines = self.get(f"/v1/invoices/{invoice_id}/lines?limit=100")["data"]
        return sum(line["amount"] for line in lines if (line["metadata"] or {}).get("kind") == "time")

    def credits(self, invoice_id: str, amount: int, **form: str) -> dict[str, Any]:
        return self.post("/v1/credit_notes", invoice=invoice_id, amount=str(amount), **form)

    def records_paid_out_of_band(self, invoice_id: str) -> dict[str, Any]:
        return self.post(f"/v1/invoices/{invoice_id}/pay", paid_out_of_band="true")


class ProjectManager:
    """Harvest: its API, and its web app for what the API cannot do (mark time invoiced by hand,
    reopen and approve entries)."""

    def __init__(self, settings: dict[str, str]):
        self.api = settings["SOURCES__HARVEST__BASE_URL"]
        self.url = self.api.removesuffix("/v2") + "/web"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {settings['SOURCES__HARVEST__ACCESS_TOKEN']}",
                                     "Harvest-Account-Id": settings["SOURCES__HARVEST__ACCOUNT_ID"],
                                     "User-Agent": "concord-scenarios (tests@example.com)"})

    def _web(self, action: str, time_entry_ids: list[int]) -> dict[str, Any]:
        response = self.session.post(f"{self.url}/time_entries/{action}", json={"ids": time_entry_ids}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def marks_invoiced(self, time_entry_ids: list[int]) -> None:
        assert self._web("mark_invoiced", time_entry_ids)["marked"] == time_entry_ids

    def time_entry(self, time_entry_id: int) -> dict[str, Any]:
        response = self.session.get(f"{self.api}/time_entries/{time_entry_id}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def corrects_approved_hours(self, time_entry_id: int, hours: float) -> None:
        """Reopens the entry, corrects its hours through the API, approves it again."""
        assert self._web("reopen", [time_entry_id])["reopened"] == [time_entry_id]
        response = self.session.patch(f"{self.api}/time_entries/{time_entry_id}", json={"hours": hours}, timeout=30)
        assert response.status_code == 200 and response.json()["hours"] == hours, response.text
        assert self._web("approve", [time_entry_id])["approved"] == [time_entry_id]

    def moves_approved_entry(self, time_entry_id: int, project_id: int) -> None:
        """Reopens the entry, moves it to another project of its consultant's, approves it again."""
        assert self._web("reopen", [time_entry_id])["reopened"] == [time_entry_id]
        response = self.session.patch(f"{self.api}/time_entries/{time_entry_id}", json={"project_id": project_id},
                                      timeout=30)
        assert response.status_code == 200 and response.json()["project"]["id"] == project_id, response.text
        assert self._web("approve", [time_entry_id])["approved"] == [time_entry_id]

    def logs_again_and_approves(self, time_entry_id: int) -> int:
        """A consultant logs an entry's time a second time (from another device); the manager
        approves the copy with the week. Returns the copy's id."""
        e = self.time_entry(time_entry_id)
        body = {"project_id": e["project"]["id"], "task_id": e["task"]["id"], "user_id": e["user"]["id"],
                "spent_date": e["spent_date"], "hours": e["hours"], "notes": e["notes"]}
        response = self.session.post(f"{self.api}/time_entries", json=body, timeout=30)
        assert response.status_code == 201, response.text
        copy = response.json()["id"]
        assert self._web("approve", [copy])["approved"] == [copy]
        return copy

    def deletes_after_reopening(self, time_entry_id: int) -> None:
        assert self._web("reopen", [time_entry_id])["reopened"] == [time_entry_id]
        response = self.session.delete(f"{self.api}/time_entries/{time_entry_id}", timeout=30)
        assert response.status_code == 200, response.text


class Erp:
    """Finance, writing the ERP's tables directly (the ERP has no API the firm uses). Writes are
    queued until `flush`."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime]):
        self.engine, self.clock = engine, clock
        self.queue: list[Callable[[Any], None]] = []

    def flush(self) -> None:
        with self.engine.begin() as con:
            for write in self.queue:
                write(con)
        self.queue.clear()

    def _later(self, write: Callable[[Any], None]) -> None:
        self.queue.append(write)

    def _stamp(self, values: dict[str, Any]) -> dict[str, Any]:
        now = self.clock().replace(tzinfo=None)
        return {**values, "write_date": now, "write_uid": FINANCE_UID}

    def _update(self, con, table: str, where: str, params: dict[str, Any] | None, **values: Any) -> None:
        stamped = self._stamp(values)
        sets = ", ".join(f"{k} = :set_{k}" for k in stamped)
        con.execute(text(f"UPDATE {table} SET {sets} WHERE {where}"),
                    {**{f"set_{k}": v for k, v in stamped.items()}, **(params or {})})

    def updates(self, table: str, where: str, params: dict[str, Any] | None = None, **values: Any) -> None:
        """UPDATE `table` SET values WHERE `where`, stamped as an edit made now."""
        self._later(lambda con: self._update(con, table, where, params, **values))

    def deletes(self, table: str, where: str, params: dict[str, Any] | None = None) -> None:
        self._later(lambda con: con.execute(text(f"DELETE FROM {table} WHERE {where}"), params or {}))

    def _insert_like(self, con, table: str, template: str, params: dict[str, Any], **values: Any) -> int:
        """Insert a copy of the first row matching `template` with `values` changed, under a new id
        above every existing one, stamped as finance's; its id."""
        row = dict(con.execute(text(f"SELECT * FROM {table} WHERE {template} ORDER BY id LIMIT 1"),
                               params).mappings().one())
        (top,) = con.execute(text(f"SELECT max(id) FROM {table}")).one()
        row.update(id=max(int(top) + 1, 900_000_000), create_date=self.clock().replace(tzinfo=None),
                   create_uid=FINANCE_UID, **self._stamp(values))
        con.execute(text(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})"), row)
        return row["id"]

    def keys_like(self, table: str, template: str, params: dict[str, Any], **values: Any) -> None:
        """A document keyed like the first one matching `template`, with `values` changed."""
        self._later(lambda con: self._insert_like(con, table, template, params, **values))

    @staticmethod
    def _booked(con, amount: float, currency: str, into: str, day: dt.date) -> float:
        """`amount` converted as the ERP books it on `day`, rounded to the cent."""
        return float(ErpRates.read(con).converted(Decimal(str(amount)), currency, into, day))

    @staticmethod
    def _currency_id(con, code: str) -> int:
        return con.execute(text("SELECT id FROM res_currency WHERE name = :c"), {"c": code}).scalar_one()

    def posts_invoice(self, partner_id: int, number: str, untaxed: float, tax: float = 0.0,
                      books_in: tuple[str, str] | None = None) -> None:
        """The Stripe invoice numbered `number` keyed in by hand as an open invoice of the partner,
        dated today; with `books_in` (billed currency, book currency), booked in the second at
        the ERP's rate of the day."""
        today = self.clock().date()

        def write(con) -> None:
            net, vat, booked = untaxed, tax, {}
            if books_in:
                net, vat = (self._booked(con, amount, *books_in, today) for amount in (untaxed, tax))
                booked["currency_id"] = self._currency_id(con, books_in[1])
            total = round(net + vat, 2)
            self._insert_like(
                con, "account_move", "partner_id = :p AND move_type = 'out_invoice' AND state = 'posted'",
                {"p": partner_id}, ref=number, payment_reference=number, name=f"INV/{number}", amount_untaxed=net,
                amount_tax=vat, amount_total=total, amount_residual=total, amount_untaxed_signed=None,
                amount_tax_signed=None, amount_total_signed=None, amount_total_in_currency_signed=total,
                amount_residual_signed=None, payment_state="not_paid", invoice_date=today, date=today,
                reversed_entry_id=None, **booked)
        self._later(write)

    def records_part_payment(self, invoice_number: str, amount: float, books_in: tuple[str, str] | None = None) -> None:
        """A bank transfer for part of an invoice, matched with it: the invoice is partly paid."""
        self.records_transfer({invoice_number: amount}, books_in)

    def records_transfer(self, paid: dict[str, float], books_in: tuple[str, str] | None = None) -> None:
        """One bank transfer paying the invoices numbered in `paid` (number -> amount), recorded
        like the partner's first payment and matched with each invoice, which is then paid or
        partly paid; with `books_in` (invoice currency, book currency), booked in the second at
        the ERP's rate of the day."""
        def write(con) -> None:
            moves = [con.execute(text("SELECT m.id, m.partner_id, m.amount_residual, c.name AS currency "
                                      "FROM account_move m JOIN res_currency c ON c.id = m.currency_id "
                                      "WHERE m.ref = :n AND m.move_type = 'out_invoice'"), {"n": n}).one()
                     for n in paid]
            today = self.clock().date()
            amount, booked = round(sum(paid.values()), 2), {}
            if books_in:
                amount = self._booked(con, amount, *books_in, today)
                booked["currency_id"] = self._currency_id(con, books_in[1])
            payment = self._insert_like(
                con, "account_payment", "partner_id = :p", {"p": moves[0].partner_id},
                name=f"BNK/{today:%Y}/{'-'.join(paid)}", date=today, amount=amount,
                amount_company_currency_signed=None, payment_reference=None, memo=f"Transfer for {', '.join(paid)}",
                move_id=None, is_reconciled=True, is_matched=True, state="paid", **booked)
            for move, amount in zip(moves, paid.values()):
                if books_in and move.currency == books_in[1]:  # the invoice booked in the payment's currency too
                    amount = self._booked(con, amount, *books_in, today)
                residual = round(float(move.amount_residual) - amount, 2)
                con.execute(text("INSERT INTO account_move__account_payment (invoice_id, payment_id) VALUES (:i, :p)"),
                            {"i": move.id, "p": payment})
                self._update(con, "account_move", "id = :i", {"i": move.id},
                             payment_state="paid" if residual <= 0 else "partial", amount_residual=max(residual, 0.0))
        self._later(write)


class People:
    """Everyone who touches the firm's systems in a scenario. What they do `later` happens after
    the firm has moved on in time, with finance's ERP edits; what they do `days_before_the_end`,
    that many days before it; what they do `right_after_the_push`, between Concord's push to the
    CRM and its next load."""

    def __init__(self, settings: dict[str, str], erp_engine: Engine, clock: Callable[[], dt.datetime]):
        self.sales = Sales(settings)
        self.billing = Billing(settings)
        self.project_manager = ProjectManager(settings)
        self.finance = Erp(erp_engine, clock)
        self.clock = clock
        self.afterwards: list[Callable[[], Any]] = []
        self.before_the_end: dict[int, list[Callable[[], Any]]] = {}
        self.after_push: list[Callable[[], Any]] = []

    def later(self, action: Callable[[], Any]) -> None:
        self.afterwards.append(action)

    def days_before_the_end(self, days: int, action: Callable[[], Any]) -> None:
        self.before_the_end.setdefault(days, []).append(action)

    def right_after_the_push(self, action: Callable[[], Any]) -> None:
        self.after_push.append(action)

    def after_the_push(self) -> None:
        for action in self.after_push:
            action()

    def catch_up(self) -> None:
        """Do what was left for later: API actions first, then finance's ERP edits."""
        for action in self.afterwards:
            action()
        self.afterwards.clear()
        self.finance.flush()
