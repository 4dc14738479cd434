"""The Stripe sandbox API on a real loopback server: paging, filters, event retention, the
2023-08-16 schemas, the invoice/credit-note write flow, idempotency, errors and rate limits."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox import store
from sandbox import stripe_objects as so
from sandbox.server.core import FaultSettings
from tests.conftest import TEST_NOW_MS
from tests.sandbox.stripe_schemas import VALIDATORS, check_schema

NOW = TEST_NOW_MS // 1000
DAY = 86400


# --- seed ------------------------------------------------------------------------------------

@dataclasses.dataclass
class Seed:
    """Everything put into the store, in insertion order (which is each table's seq order)."""

    customers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    invoiceitems: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    invoices: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    lines: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    charges: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    credit_notes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    disputes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def objects(self) -> list[dict[str, Any]]:
        return (self.customers + self.invoiceitems + self.invoices + self.charges
                + self.credit_notes + self.disputes)

    def newest_first(self, docs: list[dict[str, Any]]) -> list[str]:
        """Ids in Stripe list order: created DESC, then insertion (seq) DESC."""
        order = {doc["id"]: i for i, doc in enumerate(self.objects() + self.events)}
        key = lambda d: (d.get("created", d.get("date")), order[d["id"]])  # noqa: E731
        return [doc["id"] for doc in sorted(docs, key=key, reverse=True)]

    def live_events(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["created"] >= NOW - 30 * DAY]


def seed_stripe(data_dir: Path, *, customers: int = 40, invoices: int = 120,
                lines_per_invoice: int | None = None) -> Seed:
    """A small Stripe account built with the generator's builders, with many records sharing
    a `created` second, invoices and a credit note of more than ten lines, events older and
    younger than the 30-day retention."""
    rng = random.Random(20261101)
    seed = Seed()
    currencies = ("usd", "eur", "gbp")
    for i in range(customers):
        cus = so.customer(
            id=so.stripe_id("cus", i), created=NOW - 90 * DAY + (i // 5) * 3600,
            name=f"Client {i} Ltd", email=f"ap@client{i % 37}.test", currency=currencies[i % 3],
            metadata={"erp_customer_ref": f"C{i:05d}", "hubspot_company_id": str(1000 + i)},
            address={"city": "Leeds", "country": "GB", "line1": f"{i} Mill Street"})
        seed.customers.append(cus)
    for i in range(20):
        cus = seed.customers[i]
        seed.invoiceitems.append(so.invoiceitem(
            id=so.stripe_id("ii", "pending", i), customer=cus["id"], amount=5000 + i,
            currency=cus["currency"], date=NOW - 5 * DAY + (i // 4) * 60,
            description=f"Pending WIP {i}"))
    statuses = ("draft", "open", "paid", "paid", "void", "uncollectible", "open", "paid")
    sequence: dict[str, int] = {}
    for i in range(invoices):
        cus = seed.customers[(i * 7) % customers]
        status = statuses[i % len(statuses)]
        created = NOW - 60 * DAY + (i // 4) * 7200
        invoice_id = so.stripe_id("in", i)
        count = lines_per_invoice or 1 + (i * 5) % 14
        lines = [so.line_item(id=so.stripe_id("il", invoice_id, n),
                              invoice_item=so.stripe_id("ii", invoice_id, n),
                              amount=rng.randrange(10_000, 500_000, 100), currency=cus["currency"],
                              description=f"Consulting, week {n + 1}", quantity=1,
                              period_start=created - 30 * DAY, period_end=created)
                 for n in range(count)]
        total = sum(line["amount"] for line in lines)
        number = None
        if status != "draft":
            sequence[cus["id"]] = sequence.get(cus["id"], 0) + 1
            number = f"{cus['invoice_prefix']}-{sequence[cus['id']]:04d}"
        pre = total // 4 if status == "open" and i % 3 == 0 else 0
        post_lines = 0 if status != "paid" or i % 3 else (12 if i % 5 == 0 else 2)
        post_unit = max(1, total // (10 * max(post_lines, 1)))
        charge = None
        if status == "paid" and i % 3:
            charge = so.charge(
                id=so.stripe_id("ch", invoice_id), customer=cus["id"], amount=total,
                currency=cus["currency"], created=created + DAY, invoice=invoice_id,
                payment_intent=so.stripe_id("pi", invoice_id), description="Payment for Invoice",
                billing_name=cus["name"], billing_email=cus["email"])
            seed.charges.append(charge)
        method = "charge_automatically" if i % 10 == 3 else "send_invoice"
        doc = so.invoice(
            id=invoice_id, customer=cus["id"], created=created, currency=cus["currency"],
            lines=lines, status=status, number=number, collection_method=method,
            due_date=created + 30 * DAY if method == "send_invoice" else None,
            paid_out_of_band=status == "paid" and charge is None,
            charge=charge and charge["id"], payment_intent=charge and charge["payment_intent"],
            pre_payment_credit_notes_amount=pre,
            post_payment_credit_notes_amount=post_unit * post_lines,
            customer_name=cus["name"], customer_email=cus["email"],
            metadata={"project_code": f"P-{i % 25:03d}"},
            paid_at=created + DAY if status == "paid" else None)
        seed.invoices.append(doc)
        seed.lines[invoice_id] = lines
        if pre or post_lines:
            note_id = so.stripe_id("cn", invoice_id)
            if pre:
                note_lines = [so.credit_note_line_item(
                    id=so.stripe_id("cnli", note_id, 0), amount=pre,
                    invoice_line_item=lines[0]["id"], description="Discount agreed")]
            else:
                note_lines = [so.credit_note_line_item(
                    id=so.stripe_id("cnli", note_id, n), amount=post_unit, unit_amount=post_unit,
                    description=f"Service credit {n}") for n in range(post_lines)]
            note = so.credit_note(
                id=note_id, invoice=invoice_id, customer=cus["id"], currency=cus["currency"],
                created=created + 2 * DAY, number=f"{number}-CN-01", lines=note_lines,
                type="pre_payment" if pre else "post_payment",
                out_of_band_amount=None if pre else post_unit * post_lines)
            seed.credit_notes.append(note)
            seed.lines[note_id] = note_lines
    for i in range(6):
        cus = seed.customers[i]
        seed.charges.append(so.charge(
            id=so.stripe_id("ch", "standalone", i), customer=cus["id"], amount=99_00,
            currency="chf" if i % 2 else cus["currency"], created=NOW - 3 * DAY,
            payment_intent=so.stripe_id("pi", "standalone", i), status="succeeded"))
    for i, charge in enumerate(seed.charges[::4]):
        seed.disputes.append(so.dispute(
            id=so.stripe_id("du", charge["id"]), charge=charge["id"], amount=charge["amount"],
            currency=charge["currency"], created=charge["created"] + 3 * DAY,
            payment_intent=charge["payment_intent"],
            status=("needs_response", "under_review", "won", "lost")[i % 4],
            payment_method_type="card" if charge["payment_method_details"]["type"] == "card" else None))
    for doc in seed.objects():
        kind = doc["object"].replace("dispute", "charge.dispute")
        created = doc.get("created", doc.get("date"))
        if kind != "charge":
            seed.events.append(so.event(id=so.stripe_id("evt", doc["id"], "created"),
                                        type=f"{kind}.created", created=created,
                                        data_object=doc))
        if doc["object"] == "invoice" and doc["status"] != "draft":
            seed.events.append(so.event(id=so.stripe_id("evt", doc["id"], "finalized"),
                                        type="invoice.finalized", created=created,
                                        data_object=doc))
        if doc["object"] == "charge":
            seed.events.append(so.event(id=so.stripe_id("evt", doc["id"], "succeeded"),
                                        type="charge.succeeded", created=created,
                                        data_object=doc))
    con = store.connect(data_dir)
    with con:
        so.put_objects(con, seed.objects(), lines=seed.lines)
        so.add_events(con, seed.events)
    con.close()
    return seed


# --- helpers ---------------------------------------------------------------------------------

class Stripe:
    """A thin client: the base URL and the key, nothing a connector would not do itself."""

    def __init__(self, server: Any):
        settings = server.client_settings()
        self.base = settings["SOURCES__STRIPE__BASE_URL"]
        self.key = settings["SOURCES__STRIPE__API_KEY"]

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                **kwargs: Any) -> requests.Response:
        # A fresh connection per request: on a kept-alive connection the server's separate
        # header and body writes meet Nagle + delayed ACK and each response waits ~40 ms.
        return requests.request(method, self.base + path, **kwargs, headers={
            "Authorization": f"Bearer {self.key}", **(headers or {})})

    def get(self, path: str, params: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, params=params, **kwargs)

    def post(self, path: str, data: Any = None, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, data=data, **kwargs)

    def ok(self, method: str, path: str, data: Any = None, check: bool = True,
           **kwargs: Any) -> dict[str, Any]:
        """A 200 response's body, validated against the schemas unless `check` is false."""
        response = getattr(self, method)(path, data, **kwargs)
        assert response.status_code == 200, response.text
        assert response.headers["Request-Id"].startswith("req_")
        assert response.headers["Stripe-Version"] == "2023-08-16"
        body = response.json()
        if check:
            check_schema(body)
        return body

    def walk(self, path: str, params: list[tuple[str, Any]] | None = None, limit: int = 100,
             backwards_from: str | None = None) -> list[dict[str, Any]]:
        """Every record of a list, following starting_after (or ending_before) cursors; the
        first page is checked against the schemas."""
        params = list(params or [])
        out: list[dict[str, Any]] = []
        cursor = backwards_from
        while True:
            page_params = [*params, ("limit", limit)]
            if cursor:
                page_params.append(("ending_before" if backwards_from else "starting_after", cursor))
            page = self.ok("get", path, page_params, check=not out)
            if backwards_from:
                out[:0] = page["data"]
                cursor = page["data"][0]["id"] if page["data"] else None
            else:
                out.extend(page["data"])
                cursor = page["data"][-1]["id"] if page["data"] else None
            if not page["has_more"]:
                return out

    def error(self, response: requests.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, response.text
        assert response.headers["Request-Id"].startswith("req_")
        body = response.json()
        assert VALIDATORS["error"].is_valid(body), body
        return body["error"]


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [doc["id"] for doc in docs]


@pytest.fixture
def seeded(empty_state: Path, serve: Any) -> tuple[Stripe, Seed, Any]:
    seed = seed_stripe(empty_state)
    server = serve(empty_state)
    return Stripe(server), seed, server


@pytest.fixture
def api(empty_state: Path, serve: Any) -> Stripe:
    return Stripe(serve(empty_state))


# --- reads -----------------------------------------------------------------------------------

def test_every_list_walks_every_record_once_both_ways(seeded):
    stripe, seed, _ = seeded
    big_invoice = next(i for i in seed.invoices if len(seed.lines[i["id"]]) == 14)
    big_note = next(n for n in seed.credit_notes if len(seed.lines[n["id"]]) == 12)
    lists = {
        "/v1/customers": seed.newest_first(seed.customers),
        "/v1/invoiceitems": seed.newest_first(seed.invoiceitems),
        "/v1/invoices": seed.newest_first(seed.invoices),
        "/v1/charges": seed.newest_first(seed.charges),
        "/v1/credit_notes": seed.newest_first(seed.credit_notes),
        "/v1/disputes": seed.newest_first(seed.disputes),
        "/v1/events": seed.newest_first(seed.live_events()),
        f"/v1/invoices/{big_invoice['id']}/lines": ids(seed.lines[big_invoice["id"]]),
        f"/v1/credit_notes/{big_note['id']}/lines": ids(seed.lines[big_note["id"]]),
    }
    for path, expected in lists.items():
        assert len(expected) == len(set(expected)) > 5, path
        assert ids(stripe.walk(path, limit=7)) == expected, path
        assert ids(stripe.walk(path, limit=100)) == expected, path
        backwards = stripe.walk(path, limit=6, backwards_from=expected[-1])
        assert ids(backwards) + [expected[-1]] == expected, path
    first = stripe.ok("get", "/v1/invoices")
    assert len(first["data"]) == 10 and first["has_more"] and first["url"] == "/v1/invoices"
    embedded = stripe.ok("get", f"/v1/invoices/{big_invoice['id']}")["lines"]
    assert embedded["has_more"] and ids(embedded["data"]) == lists[
        f"/v1/invoices/{big_invoice['id']}/lines"][:10]


def test_filters_return_exactly_the_expected_records(seeded):
    stripe, seed, _ = seeded

    def expect(path: str, params: list[tuple[str, Any]], docs: list[dict[str, Any]]) -> None:
        got = ids(stripe.walk(path, params, limit=50))
        assert got == seed.newest_first(docs), (path, params)

    shared_email = seed.customers[0]["email"]
    expect("/v1/customers", [("email", shared_email)],
           [c for c in seed.customers if c["email"] == shared_email])
    assert len([c for c in seed.customers if c["email"] == shared_email]) == 2
    cus = seed.customers[7]["id"]
    expect("/v1/invoices", [("customer", cus)], [i for i in seed.invoices if i["customer"] == cus])
    for status in so.INVOICE_STATUSES:
        expect("/v1/invoices", [("status", status)],
               [i for i in seed.invoices if i["status"] == status])
    expect("/v1/invoices", [("collection_method", "charge_automatically")],
           [i for i in seed.invoices if i["collection_method"] == "charge_automatically"])
    expect("/v1/invoices", [("customer", cus), ("status", "paid")],
           [i for i in seed.invoices if i["customer"] == cus and i["status"] == "paid"])
    pivot = seed.invoices[41]["created"]
    expect("/v1/invoices", [("created", pivot)],
           [i for i in seed.invoices if i["created"] == pivot])
    assert len([i for i in seed.invoices if i["created"] == pivot]) == 4
    expect("/v1/invoices", [("created[gt]", pivot), ("created[lte]", pivot + 3 * 7200)],
           [i for i in seed.invoices if pivot < i["created"] <= pivot + 3 * 7200])
    expect("/v1/invoices", [("created[gte]", pivot), ("created[lt]", pivot + 7200)],
           [i for i in seed.invoices if pivot <= i["created"] < pivot + 7200])
    expect("/v1/invoices", [("due_date[gte]", NOW - 10 * DAY), ("due_date[lt]", NOW)],
           [i for i in seed.invoices if i["due_date"] and NOW - 10 * DAY <= i["due_date"] < NOW])
    expect("/v1/customers", [("created[lt]", NOW - 89 * DAY)],
           [c for c in seed.customers if c["created"] < NOW - 89 * DAY])
    expect("/v1/invoiceitems", [("pending", "true")], seed.invoiceitems)
    expect("/v1/invoiceitems", [("pending", "false")], [])
    expect("/v1/invoiceitems", [("customer", seed.customers[3]["id"])],
           [i for i in seed.invoiceitems if i["customer"] == seed.customers[3]["id"]])
    charge_cus = seed.charges[0]["customer"]
    expect("/v1/charges", [("customer", charge_cus)],
           [c for c in seed.charges if c["customer"] == charge_cus])
    expect("/v1/charges", [("payment_intent", seed.charges[5]["payment_intent"])],
           [seed.charges[5]])
    expect("/v1/charges", [("created[gte]", NOW - 3 * DAY)],
           [c for c in seed.charges if c["created"] >= NOW - 3 * DAY])
    note = seed.credit_notes[3]
    expect("/v1/credit_notes", [("invoice", note["invoice"])], [note])
    expect("/v1/credit_notes", [("customer", note["customer"])],
           [n for n in seed.credit_notes if n["customer"] == note["customer"]])
    dispute = seed.disputes[2]
    expect("/v1/disputes", [("charge", dispute["charge"])], [dispute])
    expect("/v1/disputes", [("payment_intent", dispute["payment_intent"])], [dispute])
    live = seed.live_events()
    expect("/v1/events", [("type", "invoice.*")],
           [e for e in live if e["type"].startswith("invoice.")])
    expect("/v1/events", [("type", "charge.dispute.*")],
           [e for e in live if e["type"].startswith("charge.dispute.")])
    expect("/v1/events", [("type", "charge.succeeded")],
           [e for e in live if e["type"] == "charge.succeeded"])
    expect("/v1/events", [("types[]", "credit_note.created"), ("types[]", "invoice.finalized")],
           [e for e in live if e["type"] in ("credit_note.created", "invoice.finalized")])
    expect("/v1/events", [("created[gte]", NOW - 4 * DAY)],
           [e for e in live if e["created"] >= NOW - 4 * DAY])
    assert any(e["type"].startswith("charge.dispute.") for e in live)


def test_events_older_than_30_days_are_gone(seeded):
    stripe, seed, _ = seeded
    old = [e for e in seed.events if e["created"] < NOW - 30 * DAY]
    assert old and seed.live_events()
    body = stripe.error(stripe.get(f"/v1/events/{old[0]['id']}"), 404)
    assert body == {**body, "code": "resource_missing", "param": "id",
                    "message": f"No such event: '{old[0]['id']}'"}
    young = seed.live_events()[0]
    assert stripe.ok("get", f"/v1/events/{young['id']}")["data"]["object"] == young["data"]["object"]
    listed = set(ids(stripe.walk("/v1/events", [("created[lte]", NOW)])))
    assert listed == set(ids(seed.live_events())) and not listed & set(ids(old))
    error = stripe.error(stripe.get("/v1/events", {"starting_after": old[0]["id"]}), 400)
    assert error["param"] == "starting_after" and error["code"] == "resource_missing"


def test_every_object_validates_against_the_2023_08_16_schemas(seeded):
    stripe, seed, _ = seeded
    for path, docs in {"customers": seed.customers, "invoiceitems": seed.invoiceitems,
                       "invoices": seed.invoices, "charges": seed.charges,
                       "credit_notes": seed.credit_notes, "disputes": seed.disputes}.items():
        for doc in docs[::7]:
            assert stripe.ok("get", f"/v1/{path}/{doc['id']}") == json.loads(json.dumps(doc))
        stripe.ok("get", f"/v1/{path}", {"limit": 100})
    for event in seed.live_events()[::25]:
        stripe.ok("get", f"/v1/events/{event['id']}")
    stripe.ok("get", "/v1/events", {"limit": 100})
    invoice = seed.invoices[13]
    expanded = stripe.ok("get", f"/v1/invoices/{invoice['id']}", [("expand[]", "customer")])
    assert expanded["customer"]["id"] == invoice["customer"]
    page = stripe.ok("get", "/v1/charges", [("expand[]", "data.invoice.customer"), ("limit", 5)])
    assert all(c["invoice"] is None or c["invoice"]["customer"]["object"] == "customer"
               for c in page["data"])
    kinds = {c["payment_method_details"]["type"] for c in seed.charges}
    assert kinds == {"us_bank_account", "sepa_debit", "bacs_debit", "card"}


# --- writes ------------------------------------------------------------------------------------

def _events_after(stripe: Stripe, seen: int) -> list[dict[str, Any]]:
    """The API-made events after the first `seen`, oldest first. The clock stands still, so
    they all carry the same `created` second and list order is append order."""
    return list(reversed(stripe.walk("/v1/events", [("created[gte]", NOW)])))[seen:]


def test_invoice_lifecycle_through_posts_changes_state_and_appends_events(api):
    stripe = api
    seen = 0

    def new_events(*types: str) -> list[dict[str, Any]]:
        nonlocal seen
        events = _events_after(stripe, seen)
        seen += len(events)
        assert [e["type"] for e in events] == list(types)
        for event in events:
            check_schema(event)
            assert event["request"]["id"].startswith("req_") and event["api_version"] == "2023-08-16"
        return events

    cus = stripe.ok("post", "/v1/customers", {
        "name": "Northwind Partners LLP", "email": "ap@northwind.test",
        "metadata[erp_customer_ref]": "C00042",
        "metadata[tier]": "gold", "address[country]": "US", "invoice_prefix": "NWP"})
    assert cus["created"] == NOW and cus["address"]["country"] == "US"
    new_events("customer.created")
    cus = stripe.ok("post", f"/v1/customers/{cus['id']}", {
        "metadata[tier]": "", "metadata[hubspot_company_id]": "901", "phone": "+1 555 0100"})
    assert cus["metadata"] == {"erp_customer_ref": "C00042", "hubspot_company_id": "901"}
    (updated,) = new_events("customer.updated")
    assert updated["data"]["previous_attributes"] == {
        "metadata": {"tier": "gold", "hubspot_company_id": None}, "phone": None}

    items = [stripe.ok("post", "/v1/invoiceitems", {"customer": cus["id"], "amount": amount,
                                                      "currency": "usd", "description": d})
             for amount, d in ((120_000, "Discovery"), (80_000, "Design"))]
    new_events("invoiceitem.created", "invoiceitem.created")
    draft = stripe.ok("post", "/v1/invoices", {
        "customer": cus["id"], "collection_method": "send_invoice", "days_until_due": 14,
        "pending_invoice_items_behavior": "include", "metadata[project_code]": "NWP-7"})
    assert draft["status"] == "draft" and draft["number"] is None
    assert draft["amount_due"] == 200_000 and draft["due_date"] == NOW + 14 * DAY
    assert {line["invoice_item"] for line in draft["lines"]["data"]} == set(ids(items))
    new_events("invoice.created")
    excluded = stripe.ok("post", "/v1/invoices", {"customer": cus["id"]})
    assert excluded["lines"]["data"] == [] and excluded["collection_method"] == "charge_automatically"
    new_events("invoice.created")
    stripe.ok("post", "/v1/invoiceitems", {"customer": cus["id"], "amount": 50_000,
                                           "invoice": draft["id"]})
    (grew,) = new_events("invoiceitem.created", "invoice.updated")[1:]
    assert grew["data"]["object"]["amount_due"] == 250_000
    assert grew["data"]["previous_attributes"]["amount_due"] == 200_000
    assert ids(stripe.walk(f"/v1/invoices/{draft['id']}/lines")) == [
        line["id"] for line in grew["data"]["object"]["lines"]["data"]]

    invoice = stripe.ok("post", f"/v1/invoices/{draft['id']}/finalize")
    assert invoice["status"] == "open" and invoice["number"] == "NWP-0001"
    assert invoice["status_transitions"]["finalized_at"] == NOW and invoice["hosted_invoice_url"]
    assert stripe.ok("get", f"/v1/customers/{cus['id']}")["next_invoice_sequence"] == 2
    new_events("invoice.finalized")
    refused = stripe.error(stripe.post(f"/v1/invoices/{draft['id']}/finalize"), 400)
    assert "already finalized" in refused["message"]

    note = stripe.ok("post", "/v1/credit_notes", {
        "invoice": invoice["id"], "lines[0][type]": "invoice_line_item",
        "lines[0][invoice_line_item]": invoice["lines"]["data"][0]["id"],
        "lines[0][amount]": 20_000, "reason": "order_change", "memo": "Scope reduced"})
    assert note["type"] == "pre_payment" and note["amount"] == 20_000
    assert note["number"] == "NWP-0001-CN-01"
    invoice = stripe.ok("get", f"/v1/invoices/{invoice['id']}")
    assert (invoice["amount_due"], invoice["amount_remaining"],
            invoice["pre_payment_credit_notes_amount"]) == (230_000, 230_000, 20_000)
    new_events("credit_note.created", "invoice.updated")

    paid = stripe.ok("post", f"/v1/invoices/{invoice['id']}/pay")
    assert paid["status"] == "paid" and paid["paid"] and paid["amount_paid"] == 230_000
    assert paid["amount_remaining"] == 0 and paid["status_transitions"]["paid_at"] == NOW
    charge = stripe.ok("get", f"/v1/charges/{paid['charge']}")
    assert charge["amount"] == 230_000 and charge["invoice"] == paid["id"]
    assert charge["payment_method_details"]["type"] == "us_bank_account"
    new_events("charge.succeeded", "invoice.paid", "invoice.payment_succeeded")
    assert stripe.error(stripe.post(f"/v1/invoices/{paid['id']}/pay"), 400)["message"] == \
        "Invoice is already paid"
    assert stripe.error(stripe.post(f"/v1/invoices/{paid['id']}/void"), 400)["message"].startswith(
        "You can only void")

    post = stripe.ok("post", "/v1/credit_notes", {"invoice": paid["id"], "amount": 30_000,
                                                  "refund_amount": 10_000,
                                                  "credit_amount": 15_000,
                                                  "out_of_band_amount": 5_000})
    assert post["type"] == "post_payment" and post["number"] == "NWP-0001-CN-02"
    assert post["refund"].startswith("re_") and post["customer_balance_transaction"].startswith("cbtxn_")
    paid = stripe.ok("get", f"/v1/invoices/{paid['id']}")
    assert paid["post_payment_credit_notes_amount"] == 30_000 and paid["amount_due"] == 230_000
    assert stripe.ok("get", f"/v1/charges/{charge['id']}")["amount_refunded"] == 10_000
    assert stripe.ok("get", f"/v1/customers/{cus['id']}")["balance"] == -15_000
    new_events("charge.refunded", "customer.updated", "credit_note.created", "invoice.updated")
    mismatch = stripe.error(stripe.post("/v1/credit_notes", {"invoice": paid["id"], "amount": 100}), 400)
    assert "must equal the credit note amount" in mismatch["message"]
    assert stripe.error(stripe.post(f"/v1/credit_notes/{post['id']}/void"), 400)[
        "message"].startswith("You can only void a credit note if the associated invoice is open")

    def open_invoice(amount: int) -> dict[str, Any]:
        draft = stripe.ok("post", "/v1/invoices", {"customer": cus["id"],
                                                   "collection_method": "send_invoice"})
        stripe.ok("post", "/v1/invoiceitems", {"customer": cus["id"], "amount": amount,
                                               "invoice": draft["id"]})
        return stripe.ok("post", f"/v1/invoices/{draft['id']}/finalize")

    voided = open_invoice(40_000)
    assert voided["number"] == "NWP-0002" and voided["due_date"] == NOW + 30 * DAY
    new_events("invoice.created", "invoiceitem.created", "invoice.updated", "invoice.finalized")
    voided = stripe.ok("post", f"/v1/invoices/{voided['id']}/void")
    assert voided["status"] == "void" and voided["status_transitions"]["voided_at"] == NOW
    assert voided["amount_due"] == 40_000 and not voided["paid"]
    new_events("invoice.voided")
    assert stripe.error(stripe.post(f"/v1/invoices/{voided['id']}/pay"), 400)
    assert stripe.error(stripe.post("/v1/credit_notes", {"invoice": voided["id"], "amount": 1}), 400)

    bad_debt = open_invoice(60_000)
    new_events("invoice.created", "invoiceitem.created", "invoice.updated", "invoice.finalized")
    bad_debt = stripe.ok("post", f"/v1/invoices/{bad_debt['id']}/mark_uncollectible")
    assert bad_debt["status"] == "uncollectible"
    assert bad_debt["status_transitions"]["marked_uncollectible_at"] == NOW
    new_events("invoice.marked_uncollectible")
    assert stripe.error(stripe.post(f"/v1/invoices/{bad_debt['id']}/mark_uncollectible"), 400)
    recovered = stripe.ok("post", f"/v1/invoices/{bad_debt['id']}/pay", {"paid_out_of_band": "true"})
    assert recovered["status"] == "paid" and recovered["paid_out_of_band"] and recovered["charge"] is None
    assert recovered["amount_paid"] == 60_000 and recovered["amount_remaining"] == 0
    new_events("invoice.paid")

    settled = open_invoice(25_000)
    new_events("invoice.created", "invoiceitem.created", "invoice.updated", "invoice.finalized")
    partial = stripe.ok("post", "/v1/credit_notes", {"invoice": settled["id"], "amount": 5_000})
    new_events("credit_note.created", "invoice.updated")
    too_much = stripe.error(stripe.post("/v1/credit_notes",
                                        {"invoice": settled["id"], "amount": 20_001}), 400)
    assert "must not exceed the amount remaining" in too_much["message"]
    void_note = stripe.ok("post", f"/v1/credit_notes/{partial['id']}/void")
    assert void_note["status"] == "void" and void_note["voided_at"] == NOW
    assert stripe.ok("get", f"/v1/invoices/{settled['id']}")["amount_due"] == 25_000
    new_events("credit_note.voided", "invoice.updated")
    full = stripe.ok("post", "/v1/credit_notes", {
        "invoice": settled["id"], "lines[0][type]": "custom_line_item",
        "lines[0][unit_amount]": 12_500, "lines[0][quantity]": 2,
        "lines[0][description]": "Goodwill"})
    assert ids(stripe.walk(f"/v1/credit_notes/{full['id']}/lines")) == ids(full["lines"]["data"])
    settled = stripe.ok("get", f"/v1/invoices/{settled['id']}")
    assert settled["status"] == "paid" and settled["amount_due"] == 0 and settled["amount_paid"] == 0
    new_events("credit_note.created", "invoice.updated", "invoice.paid")

    zero = stripe.ok("post", "/v1/invoices", {"customer": cus["id"], "collection_method": "send_invoice"})
    zero = stripe.ok("post", f"/v1/invoices/{zero['id']}/finalize")
    assert zero["status"] == "paid" and zero["number"] == "NWP-0005"
    new_events("invoice.created", "invoice.finalized", "invoice.paid")
    meta = stripe.ok("post", f"/v1/invoices/{zero['id']}", {"metadata[audited]": "yes"})
    assert meta["metadata"] == {"audited": "yes"}
    new_events("invoice.updated")
    assert stripe.error(stripe.post(f"/v1/invoices/{zero['id']}", {"description": "x"}), 400)


def test_tax_rates_tax_the_lines_they_are_applied_to(api):
    """A firm's own VAT rates, created by hand and applied to invoice items: each line carries its
    tax rounded half up, the invoice sums it per rate, and the amount due includes it."""
    stripe = api
    vat = stripe.ok("post", "/v1/tax_rates", {"display_name": "VAT", "percentage": "20", "inclusive": "false",
                                               "country": "GB", "jurisdiction": "GB", "tax_type": "vat"})
    reverse = stripe.ok("post", "/v1/tax_rates", {"display_name": "VAT reverse charge", "percentage": "0",
                                                   "inclusive": "false", "country": "FR"})
    assert stripe.ok("get", f"/v1/tax_rates/{vat['id']}") == vat
    assert ids(stripe.ok("get", "/v1/tax_rates")["data"]) == [reverse["id"], vat["id"]]
    cus = stripe.ok("post", "/v1/customers", {"name": "Harbour & Tide Ltd", "email": "ap@harbour.test"})
    for amount, rate in (("100003", vat), ("2002", vat), ("5000", reverse)):
        stripe.ok("post", "/v1/invoiceitems", {"customer": cus["id"], "amount": amount, "currency": "gbp",
                                               "tax_rates[]": rate["id"]})
    stripe.ok("post", "/v1/invoiceitems", {"customer": cus["id"], "amount": "700", "currency": "gbp"})
    draft = stripe.ok("post", "/v1/invoices", {"customer": cus["id"], "currency": "gbp",
                                                "pending_invoice_items_behavior": "include"})
    invoice = stripe.ok("post", f"/v1/invoices/{draft['id']}/finalize")
    lines = stripe.ok("get", f"/v1/invoices/{invoice['id']}/lines")["data"]
    assert sorted(t["amount"] for line in lines for t in line["tax_amounts"]) == [0, 400, 20001]
    assert {t["tax_rate"]: t["amount"] for t in invoice["total_tax_amounts"]} == {vat["id"]: 20401, reverse["id"]: 0}
    assert (invoice["total_excluding_tax"], invoice["tax"], invoice["amount_due"]) == (107705, 20401, 128106)

    unknown = stripe.post("/v1/invoiceitems", {"customer": cus["id"], "amount": "1", "currency": "gbp",
                                               "tax_rates[]": "txr_missing"})
    assert stripe.error(unknown, 400)["param"] == "tax_rates"
    assert stripe.error(stripe.post("/v1/tax_rates", {"display_name": "VAT", "inclusive": "false"}), 400)["param"] \
        == "percentage"


def test_idempotency_replays_refuses_conflicts_and_serialises_duplicates(api):
    stripe = api
    body = {"name": "Idem Co", "metadata[erp_customer_ref]": "C9"}
    first = stripe.post("/v1/customers", body, headers={"Idempotency-Key": "k-1"})
    again = stripe.post("/v1/customers", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(stripe.walk("/v1/customers")) == 1
    assert [e["type"] for e in stripe.walk("/v1/events")] == ["customer.created"]
    assert stripe.walk("/v1/events")[0]["request"]["idempotency_key"] == "k-1"

    conflict = stripe.error(stripe.post("/v1/customers", {"name": "Other"},
                                        headers={"Idempotency-Key": "k-1"}), 400)
    assert conflict["type"] == "idempotency_error"
    assert conflict["message"].startswith("Keys for idempotent requests can only be used with "
                                          "the same parameters")
    elsewhere = stripe.error(stripe.post("/v1/invoices", {"customer": first.json()["id"]},
                                         headers={"Idempotency-Key": "k-1"}), 400)
    assert elsewhere["type"] == "idempotency_error" and "same endpoint" in elsewhere["message"]

    def create(_: int) -> requests.Response:
        return requests.post(f"{stripe.base}/v1/customers", data={"name": "Race"},
                             headers={"Authorization": f"Bearer {stripe.key}",
                                      "Idempotency-Key": "race"})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(create, range(16)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(stripe.walk("/v1/customers", [("email", "x")])) == 0
    assert sum(c["name"] == "Race" for c in stripe.walk("/v1/customers")) == 1

    invoice = stripe.ok("post", "/v1/invoices", {"customer": first.json()["id"]})
    stripe.ok("post", f"/v1/invoices/{invoice['id']}/finalize")
    refused = stripe.post(f"/v1/invoices/{invoice['id']}/finalize", headers={"Idempotency-Key": "f"})
    replayed = stripe.post(f"/v1/invoices/{invoice['id']}/finalize", headers={"Idempotency-Key": "f"})
    assert refused.status_code == replayed.status_code == 400
    assert replayed.content == refused.content and replayed.headers["Idempotent-Replayed"] == "true"
    invalid = stripe.post("/v1/customers", {"bogus": "1"}, headers={"Idempotency-Key": "v"})
    stripe.error(invalid, 400)
    assert stripe.post("/v1/customers", {"name": "V"}, headers={"Idempotency-Key": "v"}).status_code == 200


def test_errors_are_shaped_and_worded_like_stripe(seeded):
    stripe, seed, server = seeded
    key = stripe.key
    missing = stripe.error(requests.get(f"{stripe.base}/v1/invoices"), 401)
    assert missing["message"].startswith("You did not provide an API key.")
    wrong = stripe.error(requests.get(f"{stripe.base}/v1/invoices",
                                      headers={"Authorization": "Bearer sk_test_nottherightkeyabcd"}), 401)
    assert wrong == {**wrong, "type": "invalid_request_error",
                     "message": "Invalid API Key provided: sk_test_****abcd"}
    assert requests.get(f"{stripe.base}/v1/customers", auth=(key, "")).status_code == 200

    for path, label in (("invoices/in_x", "invoice"), ("customers/cus_x", "customer"),
                        ("charges/ch_x", "charge"), ("disputes/du_x", "dispute"),
                        ("credit_notes/cn_x", "credit note"), ("invoices/in_x/lines", "invoice")):
        error = stripe.error(stripe.get(f"/v1/{path}"), 404)
        object_id = path.split("/")[1]
        assert error == {**error, "code": "resource_missing", "param": "id",
                         "message": f"No such {label}: '{object_id}'",
                         "doc_url": "https://stripe.com/docs/error-codes/resource-missing"}
    cases = [
        ({"limit": 0}, "limit", "This value must be greater than or equal to 1."),
        ({"limit": 101}, "limit", "This value must be less than or equal to 100."),
        ({"limit": "ten"}, "limit", "Invalid integer: ten"),
        ({"colour": "red"}, "colour", "Received unknown parameter: colour"),
        ({"created[since]": 5}, "created[since]", "Received unknown parameter: created[since]"),
        ({"created[gte]": "yesterday"}, "created[gte]", "Invalid integer: yesterday"),
        ({"status": "late"}, "status", None),
        ({"starting_after": "in_nope"}, "starting_after", "No such invoice: 'in_nope'"),
        ({"starting_after": seed.invoices[0]["id"], "ending_before": seed.invoices[1]["id"]},
         "ending_before", "You may only specify one of these parameters: ending_before, starting_after."),
        ({"subscription": "sub_1", "test_clock": "clock_1"}, "test_clock", None),
        ({"expand[]": "customer"}, "expand", "This property cannot be expanded (customer)."),
    ]
    for params, param, message in cases:
        error = stripe.error(stripe.get("/v1/invoices", params), 400)
        assert error["param"] == param, (params, error)
        assert message is None or error["message"] == message, (params, error)
    unknown = stripe.error(stripe.post("/v1/customers", {"nickname": "x"}), 400)
    assert unknown["message"] == "Received unknown parameter: nickname"
    stripe.error(stripe.post("/v1/invoices", {"customer": "cus_ghost"}), 400)
    assert stripe.error(stripe.post("/v1/invoices", {}), 400)["message"] == \
        "Missing required param: customer."
    route = stripe.error(stripe.get("/v1/plans"), 404)
    assert route["message"].startswith("Unrecognized request URL (GET: /v1/plans).")
    stripe.error(stripe.request("DELETE", f"/v1/charges/{seed.charges[0]['id']}"), 405)
    version = stripe.error(stripe.get("/v1/customers", headers={"Stripe-Version": "2024-06-20"}), 400)
    assert "2023-08-16" in version["message"]


def test_rate_limit_and_fault_mode_answer_in_stripe_shape(seeded):
    stripe, _, server = seeded
    server.settings.rate_limits = True
    try:
        started = time.monotonic()
        statuses = [stripe.get("/v1/customers", {"limit": 1}) for _ in range(30)]
        assert time.monotonic() - started < 1.0, "too slow to observe a per-second limit"
        assert [r.status_code for r in statuses[:25]] == [200] * 25
        limited = statuses[25]
        error = stripe.error(limited, 429)
        assert error["code"] == "rate_limit" and error["type"] == "invalid_request_error"
        assert int(limited.headers["Retry-After"]) >= 1
    finally:
        server.settings.rate_limits = False
    assert stripe.get("/v1/customers").status_code == 200
    server.settings.faults = FaultSettings(storm_rate=1.0, storm_length=1, retry_after=0)
    try:
        storm = stripe.get("/v1/customers")
        assert stripe.error(storm, 429)["code"] == "rate_limit" and storm.headers["Retry-After"] == "0"
        server.settings.faults = FaultSettings(error_rate=1.0)
        failure = stripe.get("/v1/customers")
        assert failure.status_code in (500, 502, 503)
        assert failure.json()["error"]["type"] == "api_error" and failure.headers["Request-Id"]
    finally:
        server.settings.faults = FaultSettings()


# --- builders and store helpers ---------------------------------------------------------------------

def test_builders_are_deterministic_fresh_and_consistent(empty_state):
    assert so.stripe_id("in_", 1, "a") == so.stripe_id("in", 1, "a") != so.stripe_id("in", 1, "b")
    assert len(so.stripe_id("cus", 1)) == 18 and len(so.stripe_id("ch", 1)) == 27
    lines = [so.line_item(id=f"il_{n}", invoice_item=f"ii_{n}", amount=1000, currency="eur",
                          period_start=1, period_end=2) for n in range(12)]
    docs = [so.invoice(id=f"in_{n}", customer="cus_1", created=10, currency="eur", lines=lines,
                       status="paid", number=f"X-{n:04d}") for n in range(2)]

    def containers(value: Any, path: str = "") -> dict[str, int]:
        found = {}
        if isinstance(value, (dict, list)):
            found[path] = id(value)
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if path.startswith(".lines.data"):
                    continue
                found.update(containers(item, f"{path}.{key}"))
        return found

    first, second = (containers(doc) for doc in docs)
    assert not set(first.values()) & set(second.values())
    paid = docs[0]
    assert (paid["amount_due"], paid["amount_paid"], paid["amount_remaining"]) == (12_000, 12_000, 0)
    assert paid["lines"]["has_more"] and len(paid["lines"]["data"]) == 10
    assert paid["status_transitions"]["paid_at"] == 10 and paid["paid"]
    with pytest.raises(ValueError):
        so.invoice(id="in_x", customer="c", created=1, currency="usd", lines=[], status="open")
    con = store.connect(empty_state)
    with pytest.raises(ValueError):
        so.put_object(con, paid)
    so.put_object(con, paid, lines=lines)
    so.put_object(con, so.customer(id="cus_1", created=5))
    before = con.execute("SELECT seq FROM stripe_objects WHERE id = 'in_0'").fetchone()
    so.put_object(con, {**paid, "status": "void"})
    assert con.execute("SELECT seq, status FROM stripe_objects WHERE id = 'in_0'").fetchone() == (
        before[0], "void")
    assert len(so.load_lines(con, "in_0")) == 12
    open_ = so.invoice(id="in_o", customer="c", created=1, currency="usd", lines=lines[:2],
                       status="open", number="X-9", pre_payment_credit_notes_amount=500,
                       amount_paid=0)
    assert (open_["amount_due"], open_["amount_remaining"], open_["paid"]) == (1500, 1500, False)
    con.close()


def test_serving_rate_for_a_100_invoice_page(empty_state, serve):
    seed_stripe(empty_state, customers=50, invoices=300, lines_per_invoice=3)
    stripe = Stripe(serve(empty_state))
    pages = [{"limit": 100}]
    while True:
        page = stripe.ok("get", "/v1/invoices", pages[-1], check=False)
        if not page["has_more"]:
            break
        pages.append({"limit": 100, "starting_after": page["data"][-1]["id"]})
    size = len(stripe.get("/v1/invoices", pages[0]).content)
    for keep_alive in (False, True):
        http = requests.Session() if keep_alive else requests
        rounds, started = 0, time.perf_counter()
        while time.perf_counter() - started < 1.0:
            response = http.get(f"{stripe.base}/v1/invoices", params=pages[rounds % len(pages)],
                                headers={"Authorization": f"Bearer {stripe.key}"})
            assert response.status_code == 200 and len(response.content) > 100_000
            rounds += 1
        elapsed = time.perf_counter() - started
        print(f"\n/v1/invoices limit=100, 3 lines each ({size // 1024} KiB/page, "
              f"{'kept-alive' if keep_alive else 'new'} connection): "
              f"{rounds * 100 / elapsed:,.0f} records/s, {elapsed / rounds * 1000:.1f} ms/page")
