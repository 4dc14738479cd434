"""Writes through the vendor APIs are facts: `advance` never undoes or contradicts them, and the
firm carries on around them (ERP included). One test per Stripe invoice status write, and one for
HubSpot property updates of one record; HubSpot's other writes and Harvest's are tested in
`test_facts_hubspot_harvest.py`."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from sandbox import erp_schema, store
from sandbox.lifecycle import advance, generate
from sandbox.server.app import RunningServer
from sandbox.world.config import DAY, SCALES, WorldConfig, fault_rates, noise_rates, parse_date
from sandbox.world.derived import HS_DEAL_BASE, derive
from sandbox.world.firm import simulate

AS_OF, DAYS, SEED = "2026-06-01", 60, 21


@functools.cache
def open_invoices_paid_later() -> list[tuple[str, str]]:
    """(Stripe invoice id, number) of invoices open at AS_OF that the simulated client pays by card
    within DAYS, with no fault, instalment plan or credit note to confound what follows."""
    start = parse_date(AS_OF)
    config = WorldConfig(seed=SEED, scale=SCALES["small"], start=parse_date("2025-11-01"),
                         fault_rates=fault_rates(), noise_rates=noise_rates())
    world = simulate(config, start + DAYS * DAY)
    d, inv = derive(world), world.invoices
    chosen = ((inv["finalized_at"] + 6 * DAY <= start) & (inv["stripe_paid_at"] > start)
              & (inv["stripe_paid_at"] <= start + DAYS * DAY - 10 * DAY) & (inv["fault"] == 0)
              & (inv["instalments"] == 0) & (inv["cn_at"] > start + DAYS * DAY) & (inv["client"] >= 0)
              & (d.erp_posted_at <= start))
    return [(d.stripe_invoice_id[i], d.invoice_number[i]) for i in chosen.nonzero()[0].tolist()]


@pytest.fixture
def firm(tmp_path: Path, serve):
    data_dir = tmp_path / "firm"
    generate(data_dir, scale="small", seed=SEED, as_of=AS_OF)
    server = serve(data_dir)
    settings = server.client_settings()

    def stripe(path: str, **form: str) -> dict:
        response = requests.post(f"{stripe.base_url}{path}", data=form, timeout=30, headers=stripe.headers)
        assert response.status_code == 200, response.text
        return response.json()

    stripe.base_url = settings["SOURCES__STRIPE__BASE_URL"]
    stripe.headers = {"Authorization": f"Bearer {settings['SOURCES__STRIPE__API_KEY']}"}
    return data_dir, stripe


def state(data_dir: Path, invoice_id: str, number: str) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """The Stripe invoice, its charges, and the ERP invoice and payments recorded for its number."""
    con = store.connect(data_dir)
    try:
        invoice = json.loads(con.execute("SELECT doc FROM stripe_objects WHERE id = ?", (invoice_id,)).fetchone()[0])
        charges = [json.loads(doc) for (doc,) in con.execute(
            "SELECT doc FROM stripe_objects WHERE object = 'charge' AND invoice = ?", (invoice_id,))]
        engine = erp_schema.engine_for(store.erp_url(con, data_dir))
    finally:
        con.close()
    try:
        with engine.connect() as erp:
            moves = [dict(r) for r in erp.execute(text(
                "SELECT id, state, payment_state FROM account_move WHERE ref = :n AND move_type = 'out_invoice'"),
                {"n": number}).mappings()]
            payments = [dict(r) for r in erp.execute(text(
                "SELECT id, amount FROM account_payment WHERE payment_reference = :n OR memo LIKE :m"),
                {"n": number, "m": f"%{number}%"}).mappings()]
    finally:
        engine.dispose()
    return invoice, charges, moves, payments


def write_then_advance(firm, which: int, action: str, **form: str) -> tuple[dict, ...]:
    """POST `action` on the `which`-th open invoice the simulation pays later, advance past that
    payment; the write's response, then the invoice's state (`state`)."""
    data_dir, stripe = firm
    invoice_id, number = open_invoices_paid_later()[which]
    written = stripe(f"/v1/invoices/{invoice_id}/{action}", **form)
    advance(data_dir, DAYS)
    return (written, *state(data_dir, invoice_id, number))


def test_a_voided_invoice_is_never_paid_afterwards(firm) -> None:
    _, invoice, charges, moves, payments = write_then_advance(firm, 0, "void")
    assert invoice["status"] == "void" and invoice["amount_paid"] == 0
    assert charges == [] and payments == []
    assert [m["state"] for m in moves] == ["cancel"], "finance cancels it in the ERP"


def test_an_invoice_paid_out_of_band_is_not_paid_again(firm) -> None:
    _, invoice, charges, moves, payments = write_then_advance(firm, 1, "pay", paid_out_of_band="true")
    assert invoice["status"] == "paid" and invoice["paid_out_of_band"] and invoice["charge"] is None
    assert charges == [], "no card payment replaces the one recorded out of band"
    assert len(payments) == 1 and [m["payment_state"] for m in moves] == ["paid"], "one ERP payment, applied"


def test_an_invoice_paid_by_card_through_the_api_keeps_its_one_charge(firm) -> None:
    paid, invoice, charges, _, payments = write_then_advance(firm, 2, "pay")
    assert invoice["status"] == "paid" and invoice["charge"] == paid["charge"]
    assert [c["id"] for c in charges] == [paid["charge"]]
    assert len(payments) == 1


def test_an_invoice_marked_uncollectible_is_not_paid_afterwards(firm) -> None:
    _, invoice, charges, _, _ = write_then_advance(firm, 3, "mark_uncollectible")
    assert invoice["status"] == "uncollectible" and invoice["status_transitions"]["marked_uncollectible_at"]
    assert charges == []


def deal_that_closes_later() -> str:
    """HubSpot id of a deal open at AS_OF whose stage the simulation moves on within DAYS."""
    start = parse_date(AS_OF)
    config = WorldConfig(seed=SEED, scale=SCALES["small"], start=parse_date("2025-11-01"),
                         fault_rates=fault_rates(), noise_rates=noise_rates())
    deals = simulate(config, start + DAYS * DAY).deals
    chosen = (deals["opened_at"] < start) & (deals["close_at"] > start) & (deals["close_at"] <= start + DAYS * DAY)
    return str(HS_DEAL_BASE + int(chosen.nonzero()[0][0]))


def test_a_deal_amount_edited_in_hubspot_stays_as_written(firm) -> None:
    data_dir, _ = firm
    deal = deal_that_closes_later()
    with RunningServer(data_dir) as server:
        client = server.client_settings()
        headers = {"Authorization": f"Bearer {client['SOURCES__HUBSPOT__ACCESS_TOKEN']}"}
        url = f"{client['SOURCES__HUBSPOT__BASE_URL']}/crm/v3/objects/deals/{deal}"
        before = requests.get(url, params={"properties": "amount,dealstage"}, headers=headers, timeout=30).json()
        response = requests.patch(url, json={"properties": {"amount": "12345.67", "description": "re-scoped"}},
                                  headers=headers, timeout=30)
        assert response.status_code == 200, response.text
    advance(data_dir, DAYS)
    with RunningServer(data_dir) as server:
        client = server.client_settings()
        headers = {"Authorization": f"Bearer {client['SOURCES__HUBSPOT__ACCESS_TOKEN']}"}
        after = requests.get(f"{client['SOURCES__HUBSPOT__BASE_URL']}/crm/v3/objects/deals/{deal}",
                             params={"properties": "amount,dealstage,description"}, headers=headers, timeout=30).json()
    assert after["properties"]["dealstage"] != before["properties"]["dealstage"], "the simulation moved the deal on"
    assert after["properties"]["amount"] == "12345.67" and after["properties"]["description"] == "re-scoped"
