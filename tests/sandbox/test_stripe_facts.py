"""Stripe writes other than invoice status changes are facts too: credit notes, field updates and
the objects a client creates survive `advance`, and the firm carries on around them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import requests
from sqlalchemy import text

from sandbox import erp_schema, store
from sandbox.lifecycle import advance
from sandbox.world.config import DAY, SCALES, WorldConfig, fault_rates, noise_rates, parse_date
from sandbox.world.derived import derive
from sandbox.world.firm import simulate
from tests.sandbox.test_facts import AS_OF, DAYS, SEED, firm, open_invoices_paid_later, state  # noqa: F401


def stripe_doc(data_dir: Path, object_id: str) -> dict:
    con = store.connect(data_dir)
    try:
        return json.loads(con.execute("SELECT doc FROM stripe_objects WHERE id = ?", (object_id,)).fetchone()[0])
    finally:
        con.close()


def stripe_docs(data_dir: Path, obj: str, **where: str) -> list[dict]:
    con = store.connect(data_dir)
    try:
        clause = " AND ".join(f"{k} = ?" for k in where)
        rows = con.execute(f"SELECT doc FROM stripe_objects WHERE object = ? {'AND ' + clause if where else ''}",
                           (obj, *where.values()))
        return [json.loads(doc) for (doc,) in rows]
    finally:
        con.close()


def erp_refunds(data_dir: Path, number: str) -> list[dict]:
    engine = erp_schema.engine_of(data_dir)
    try:
        with engine.connect() as erp:
            return [dict(r) for r in erp.execute(text(
                "SELECT r.amount_total FROM account_move r JOIN account_move i ON r.reversed_entry_id = i.id "
                "WHERE i.ref = :n AND r.move_type = 'out_refund'"), {"n": number}).mappings()]
    finally:
        engine.dispose()


def test_a_credit_note_before_payment_is_the_invoices_and_the_client_pays_the_rest(firm) -> None:
    data_dir, stripe = firm
    invoice_id, number = open_invoices_paid_later()[4]
    total = stripe_doc(data_dir, invoice_id)["total"]
    note = stripe("/v1/credit_notes", invoice=invoice_id, amount="5000", reason="order_change")
    advance(data_dir, DAYS)
    invoice, charges, moves, payments = state(data_dir, invoice_id, number)
    assert invoice["status"] == "paid" and invoice["pre_payment_credit_notes_amount"] == 5000
    assert [c["amount"] for c in charges] == [total - 5000], "the client paid what the credit left"
    assert [n["id"] for n in stripe_docs(data_dir, "credit_note", invoice=invoice_id)] == [note["id"]]
    assert [r["amount_total"] for r in erp_refunds(data_dir, number)] == [50.0], "finance posted the credit"
    assert [p["amount"] for p in payments] == [(total - 5000) / 100]
    assert [m["payment_state"] for m in moves] == ["paid"]


def paid_by_card_before() -> tuple[str, str]:
    """A card-paid invoice, settled before AS_OF, with nothing else in its life."""
    start = parse_date(AS_OF)
    config = WorldConfig(seed=SEED, scale=SCALES["small"], start=parse_date("2025-11-01"),
                         fault_rates=fault_rates(), noise_rates=noise_rates())
    world = simulate(config, start + DAYS * DAY)
    d, inv = derive(world), world.invoices
    chosen = ((inv["stripe_paid_at"] < start - 10 * DAY) & (inv["fault"] == 0) & (inv["instalments"] == 0)
              & (inv["cn_at"] >= np.iinfo(np.int64).max // 2) & (inv["disputed_at"] > start + DAYS * DAY)
              & ~inv["full_credit"] & ~inv["paid_out_of_band"] & (inv["client"] >= 0) & (d.erp_paid_at < start))
    i = int(chosen.nonzero()[0][-1])
    return d.stripe_invoice_id[i], d.invoice_number[i]


def test_a_refund_after_payment_is_posted_to_the_erp_and_stays(firm) -> None:
    data_dir, stripe = firm
    invoice_id, number = paid_by_card_before()
    charge_id = stripe_doc(data_dir, invoice_id)["charge"]
    stripe("/v1/credit_notes", invoice=invoice_id, amount="2500", refund_amount="2500")
    advance(data_dir, DAYS)
    invoice, charges, _, _ = state(data_dir, invoice_id, number)
    assert invoice["post_payment_credit_notes_amount"] == 2500
    assert [(c["id"], c["amount_refunded"]) for c in charges] == [(charge_id, 2500)]
    assert len(stripe_docs(data_dir, "credit_note", invoice=invoice_id)) == 1
    assert [r["amount_total"] for r in erp_refunds(data_dir, number)] == [25.0]


def test_a_voided_credit_note_leaves_the_invoice_as_the_api_wrote_it(firm) -> None:
    data_dir, stripe = firm
    invoice_id, number = open_invoices_paid_later()[5]
    note = stripe("/v1/credit_notes", invoice=invoice_id, amount="1000")
    stripe(f"/v1/credit_notes/{note['id']}/void")
    advance(data_dir, DAYS)
    invoice, charges, _, payments = state(data_dir, invoice_id, number)
    assert invoice["status"] == "open" and invoice["pre_payment_credit_notes_amount"] == 0
    assert charges == [] and payments == [], "nothing planned for it after the write happens"
    assert [n["status"] for n in stripe_docs(data_dir, "credit_note", invoice=invoice_id)] == ["void"]


def test_fields_written_on_an_invoice_stay_as_the_simulation_moves_it_on(firm) -> None:
    data_dir, stripe = firm
    invoice_id, number = open_invoices_paid_later()[6]
    stripe(f"/v1/invoices/{invoice_id}", description="Re-issued per PO 4471", **{"metadata[po]": "4471"})
    advance(data_dir, DAYS)
    invoice, *_ = state(data_dir, invoice_id, number)
    assert invoice["status"] == "paid", "the simulation moved it on"
    assert invoice["description"] == "Re-issued per PO 4471" and invoice["metadata"]["po"] == "4471"
    assert "project_code" in invoice["metadata"], "and kept what it projects itself"


def test_fields_written_on_a_customer_stay_as_the_simulation_moves_it_on(firm) -> None:
    data_dir, stripe = firm
    invoice_id, _ = open_invoices_paid_later()[0]
    customer_id = stripe_doc(data_dir, invoice_id)["customer"]
    before = stripe_doc(data_dir, customer_id)
    stripe(f"/v1/customers/{customer_id}", email="ap@renamed.example", **{"metadata[sap_id]": "S-1"})
    advance(data_dir, DAYS)
    after = stripe_doc(data_dir, customer_id)
    assert after["next_invoice_sequence"] > before["next_invoice_sequence"], "the simulation re-projected it"
    assert after["email"] == "ap@renamed.example" and after["metadata"]["sap_id"] == "S-1"
    assert after["name"] == before["name"]


def test_objects_a_client_creates_are_left_as_created(firm) -> None:
    data_dir, stripe = firm
    customer = stripe("/v1/customers", name="Walk-in Client Ltd", email="ap@walk-in.example")
    sales_tax = stripe("/v1/tax_rates", display_name="Sales tax", percentage="8.875", inclusive="false")
    stripe("/v1/invoiceitems", customer=customer["id"], amount="90000", currency="usd", description="Workshop",
           **{"tax_rates[]": sales_tax["id"]})
    pending = stripe("/v1/invoiceitems", customer=customer["id"], amount="1500", currency="usd")
    invoice = stripe("/v1/invoices", customer=customer["id"], pending_invoice_items_behavior="include")
    stripe("/v1/invoiceitems", customer=customer["id"], amount="700", currency="usd")
    finalized = stripe(f"/v1/invoices/{invoice['id']}/finalize")
    before = {obj: stripe_docs(data_dir, obj, customer=customer["id"]) for obj in ("customer", "invoiceitem", "invoice")}
    advance(data_dir, DAYS)
    after = {obj: stripe_docs(data_dir, obj, customer=customer["id"]) for obj in ("customer", "invoiceitem", "invoice")}
    assert after == before
    assert stripe_docs(data_dir, "tax_rate") == [sales_tax]
    assert [i["status"] for i in after["invoice"]] == ["open"] and finalized["amount_due"] == 91500 + 7988
    assert {i["id"]: i["invoice"] for i in after["invoiceitem"]}[pending["id"]] == invoice["id"]


def test_a_customer_deleted_stays_deleted_and_keeps_its_invoices(firm) -> None:
    data_dir, stripe = firm
    invoice_id, _ = open_invoices_paid_later()[9]
    customer_id = stripe_doc(data_dir, invoice_id)["customer"]
    invoices_before = {i["id"] for i in stripe_docs(data_dir, "invoice", customer=customer_id)}
    tombstone = {"id": customer_id, "object": "customer", "deleted": True}
    response = requests.delete(f"{stripe.base_url}/v1/customers/{customer_id}", headers=stripe.headers, timeout=30)
    assert response.json() == tombstone
    advance(data_dir, DAYS)
    assert stripe_docs(data_dir, "customer", id=customer_id) == [], "gone from the customers"
    assert requests.get(f"{stripe.base_url}/v1/customers/{customer_id}", headers=stripe.headers,
                        timeout=30).json() == tombstone
    after = {i["id"] for i in stripe_docs(data_dir, "invoice", customer=customer_id)}
    assert invoices_before < after, "its invoices stay, and the simulation billed it again (which re-writes a customer)"
    refused = requests.post(f"{stripe.base_url}/v1/invoiceitems", headers=stripe.headers, timeout=30,
                            data={"customer": customer_id, "amount": "100", "currency": "usd"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "resource_missing"


def test_an_invoice_the_api_finalised_keeps_its_number_in_the_customers_sequence(firm) -> None:
    data_dir, stripe = firm
    invoice_id, _ = open_invoices_paid_later()[7]
    customer_id = stripe_doc(data_dir, invoice_id)["customer"]
    stripe("/v1/invoiceitems", customer=customer_id, amount="40000", currency=stripe_doc(data_dir, invoice_id)["currency"])
    draft = stripe("/v1/invoices", customer=customer_id, pending_invoice_items_behavior="include")
    number = stripe(f"/v1/invoices/{draft['id']}/finalize")["number"]
    count_before = len(stripe_docs(data_dir, "invoice", customer=customer_id))
    advance(data_dir, DAYS)
    invoices = [i for i in stripe_docs(data_dir, "invoice", customer=customer_id) if i["number"]]
    assert len(invoices) > count_before, "the simulation billed the customer again"
    numbers = [i["number"] for i in invoices]
    assert len(set(numbers)) == len(numbers), "no number is given twice"
    assert stripe_doc(data_dir, draft["id"])["number"] == number
    assert stripe_doc(data_dir, customer_id)["next_invoice_sequence"] == len(numbers) + 1
