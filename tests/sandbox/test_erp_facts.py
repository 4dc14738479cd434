"""Rows finance writes to the ERP database directly are facts: `advance` never overwrites a row
an ERP user last wrote (Odoo's `write_uid`), however the firm moves the record on."""

from __future__ import annotations

from sqlalchemy import text

from sandbox import erp_schema
from sandbox.lifecycle import advance
from tests.sandbox.test_facts import DAYS, firm, open_invoices_paid_later, state  # noqa: F401

FINANCE_UID = 7


def test_an_invoice_edited_in_the_erp_stays_as_finance_left_it(firm) -> None:
    data_dir, _ = firm
    invoice_id, number = open_invoices_paid_later()[0]
    engine = erp_schema.engine_of(data_dir)
    with engine.begin() as con:
        con.execute(text("UPDATE account_move SET amount_total = 1.23, "
                         "write_uid = :uid WHERE ref = :n AND move_type = 'out_invoice'"),
                    {"uid": FINANCE_UID, "n": number})
    advance(data_dir, DAYS)
    invoice, _, moves, payments = state(data_dir, invoice_id, number)
    with engine.connect() as con:
        kept = con.execute(text("SELECT amount_total, payment_state, write_uid FROM account_move "
                                "WHERE ref = :n AND move_type = 'out_invoice'"), {"n": number}).one()
        links = con.execute(text("SELECT count(*) FROM account_move__account_payment l JOIN account_move m "
                                 "ON m.id = l.invoice_id WHERE m.ref = :n"), {"n": number}).scalar()
    engine.dispose()
    assert invoice["status"] == "paid", "the client paid, as the simulation planned"
    assert (float(kept.amount_total), kept.payment_state, kept.write_uid) == (1.23, "not_paid", FINANCE_UID)
    assert links == 0, "nothing is matched to finance's own invoice row behind its back"
    assert len(payments) == 1, "the payment itself still reached the ERP"
