"""Every ground-truth entry points at records that exist and disagree the way it says.

The checks read the systems' state as a connector would see it (the SQLite state behind the
APIs and the ERP database), never the generator's internals.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import text

from sandbox import erp_schema, ground_truth, store
from sandbox.lifecycle import advance, generate
from sandbox.world.config import FAULT_TYPES, NOISE_KINDS, fault_rates, noise_rates
from tests.vendor_truth import ErpRates


class Systems:
    """Read access to one data dir's four systems."""

    def __init__(self, data_dir: Path):
        self.con = store.connect(data_dir)
        self.engine = erp_schema.engine_for(store.erp_url(self.con, data_dir))
        self.erp = self.engine.connect()

    def close(self) -> None:
        self.erp.close()
        self.engine.dispose()
        self.con.close()

    def hubspot(self, object_type: str, object_id: str) -> dict[str, Any] | None:
        row = self.con.execute("SELECT properties FROM hs_objects WHERE object_type = ? AND id = ?",
                               (object_type, int(object_id))).fetchone()
        return None if row is None else json.loads(row[0])

    def hubspot_all(self, object_type: str) -> list[dict[str, Any]]:
        return [json.loads(p) for (p,) in self.con.execute(
            "SELECT properties FROM hs_objects WHERE object_type = ? AND archived = 0", (object_type,))]

    def stripe(self, object_id: str) -> dict[str, Any] | None:
        row = self.con.execute("SELECT doc FROM stripe_objects WHERE id = ?", (object_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def harvest(self, table: str, record_id: str) -> dict[str, Any] | None:
        cursor = self.con.execute(f"SELECT * FROM hv_{table} WHERE id = ?", (int(record_id),))
        row = cursor.fetchone()
        return None if row is None else dict(zip([c[0] for c in cursor.description], row))

    def erp_rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in self.erp.execute(text(sql), params).mappings()]


def _record(entry: dict[str, Any], system: str, obj: str) -> list[dict[str, Any]]:
    return [r for r in entry["records"] if r["system"] == system and r["object"] == obj]


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def check_customer_missing_in_erp(s: Systems, e: dict) -> None:
    company = s.hubspot("companies", _record(e, "hubspot", "company")[0]["id"])
    assert company is not None
    deals = [s.hubspot("deals", r["id"]) for r in _record(e, "hubspot", "deal")]
    assert deals and all(d["dealstage"] == "closedwon" for d in deals)
    base = _norm(e["customer"]["name"])
    partners = s.erp_rows("SELECT name, vat FROM res_partner")
    assert not [p for p in partners if base in _norm(p["name"])]
    assert e["amount_at_risk"] == pytest.approx(sum(float(d["amount"]) for d in deals))


def check_customer_attribute_mismatch(s: Systems, e: dict) -> None:
    d = e["details"]
    values = d["values"]
    assert len(set(values.values())) == 2
    if d["attribute"] == "vat":
        partner = s.erp_rows("SELECT vat FROM res_partner WHERE id = :id", id=int(_record(e, "erp", "res_partner")[0]["id"]))
        assert partner[0]["vat"] == values["erp"]
        assert s.hubspot("companies", _record(e, "hubspot", "company")[0]["id"])["vat_number"] == values["hubspot"]
    elif d["attribute"] == "country":
        partner = s.erp_rows("SELECT c.code FROM res_partner p JOIN res_country c ON c.id = p.country_id "
                             "WHERE p.id = :id", id=int(_record(e, "erp", "res_partner")[0]["id"]))
        assert partner[0]["code"] == values["erp"]
        assert s.stripe(_record(e, "stripe", "customer")[0]["id"])["address"]["country"] == values["stripe"]
    else:
        assert s.hubspot("companies", _record(e, "hubspot", "company")[0]["id"])["domain"] == values["hubspot"]
        email = s.stripe(_record(e, "stripe", "customer")[0]["id"])["email"]
        assert email.split("@")[1] == values["stripe"]


def check_duplicate_customer(s: Systems, e: dict) -> None:
    first, second = e["records"]
    assert first["system"] == second["system"] and first["id"] != second["id"]
    base = _norm(e["customer"]["name"].split()[0])
    if first["system"] == "hubspot":
        a, b = s.hubspot("companies", first["id"]), s.hubspot("companies", second["id"])
        assert a.get("domain") == b.get("domain") or a.get("vat_number") == b.get("vat_number")
        names = [a["name"], b["name"]]
    elif first["system"] == "erp":
        rows = s.erp_rows("SELECT name, vat FROM res_partner WHERE id IN (:a, :b)", a=int(first["id"]), b=int(second["id"]))
        assert len(rows) == 2 and rows[0]["vat"] == rows[1]["vat"]
        names = [r["name"] for r in rows]
    elif first["system"] == "stripe":
        a, b = s.stripe(first["id"]), s.stripe(second["id"])
        assert a["email"].split("@")[1].split(".")[0] in b["email"] or a["address"]["country"] == b["address"]["country"]
        names = [a["name"], b["name"]]
    else:
        a, b = s.harvest("clients", first["id"]), s.harvest("clients", second["id"])
        names = [a["name"], b["name"]]
    assert all(base in _norm(n) for n in names)


def check_contract_value_mismatch(s: Systems, e: dict) -> None:
    deal = s.hubspot("deals", _record(e, "hubspot", "deal")[0]["id"])
    order = s.erp_rows("SELECT amount_total FROM sale_order WHERE id = :id", id=int(_record(e, "erp", "sale_order")[0]["id"]))
    assert float(deal["amount"]) == pytest.approx(e["details"]["crm_amount"])
    assert float(order[0]["amount_total"]) == pytest.approx(e["details"]["erp_amount"])
    assert e["amount_at_risk"] == pytest.approx(abs(float(deal["amount"]) - float(order[0]["amount_total"])))
    assert e["amount_at_risk"] > 0


def check_won_deal_without_project(s: Systems, e: dict) -> None:
    deal = s.hubspot("deals", _record(e, "hubspot", "deal")[0]["id"])
    assert deal["dealstage"] == "closedwon"
    code = e["details"]["expected_project_code"]
    assert s.con.execute("SELECT count(*) FROM hv_projects WHERE code = ?", (code,)).fetchone()[0] == 0
    assert e["amount_at_risk"] == pytest.approx(float(deal["amount"]))


def check_approved_time_unbilled(s: Systems, e: dict) -> None:
    """The week's entries are approved and billable (whatever Harvest's hand-set `is_billed` says),
    and the project's approved time of the month exceeds what its Stripe time lines billed by
    exactly their value."""
    entries = [s.harvest("time_entries", r["id"]) for r in _record(e, "harvest", "time_entry")]
    assert entries and all(t is not None for t in entries)
    assert all(t["is_closed"] == 1 and t["billable"] == 1 for t in entries)
    assert e["amount_at_risk"] == pytest.approx(sum(t["hours"] * t["billable_rate"] for t in entries), abs=0.01)
    project = s.harvest("projects", _record(e, "harvest", "project")[0]["id"])
    month = e["details"]["billing_month"]
    (approved,) = s.con.execute(
        "SELECT sum(hours * billable_rate) FROM hv_time_entries WHERE project_id = ? AND is_closed = 1 "
        "AND billable = 1 AND substr(spent_date, 1, 7) = ?", (project["id"], month)).fetchone()
    billed = 0
    for (doc,) in s.con.execute("SELECT l.doc FROM stripe_invoice_lines l JOIN stripe_objects i ON i.id = l.invoice "
                                "WHERE i.object = 'invoice' AND i.status NOT IN ('draft', 'void')"):
        line = json.loads(doc)
        start = dt.datetime.fromtimestamp(line["period"]["start"], dt.timezone.utc).strftime("%Y-%m")
        if line["metadata"].get("project_code") == project["code"] and line["metadata"].get("kind") == "time" \
                and start == month:
            billed += line["amount"] / 100
    assert e["amount_at_risk"] == pytest.approx(approved - billed, abs=0.01)


def _erp_invoice(s: Systems, number: str) -> list[dict[str, Any]]:
    return s.erp_rows("SELECT * FROM account_move WHERE ref = :ref AND move_type = 'out_invoice'", ref=number)


def check_invoice_missing_in_erp(s: Systems, e: dict) -> None:
    ref = _record(e, "stripe", "invoice")[0]
    invoice = s.stripe(ref["id"])
    assert invoice["status"] in {"open", "paid", "uncollectible"}
    assert invoice["number"] == ref["number"]
    assert _erp_invoice(s, ref["number"]) == []
    assert e["amount_at_risk"] == pytest.approx(invoice["total"] / 100)


def check_invoice_amount_mismatch(s: Systems, e: dict) -> None:
    ref = _record(e, "stripe", "invoice")[0]
    invoice, moves = s.stripe(ref["id"]), _erp_invoice(s, ref["number"])
    assert invoice["total"] / 100 == pytest.approx(e["details"]["stripe_total"])
    assert float(moves[0]["amount_total"]) == pytest.approx(e["details"]["erp_total"])
    assert e["amount_at_risk"] == pytest.approx(abs(invoice["total"] / 100 - float(moves[0]["amount_total"])))


def check_invoice_status_mismatch(s: Systems, e: dict) -> None:
    ref = _record(e, "stripe", "invoice")[0]
    invoice, moves = s.stripe(ref["id"]), _erp_invoice(s, ref["number"])
    assert len(moves) == 1
    if invoice["status"] == "void":
        assert moves[0]["state"] == "posted" and moves[0]["payment_state"] == "not_paid"
    else:
        assert invoice["status"] == "open"
        assert moves[0]["payment_state"] == "paid"


def check_payment_unapplied(s: Systems, e: dict) -> None:
    ref = _record(e, "stripe", "invoice")[0]
    invoice = s.stripe(ref["id"])
    charge = s.stripe(_record(e, "stripe", "charge")[0]["id"])
    assert invoice["status"] == "paid" and charge["status"] == "succeeded" and charge["invoice"] == ref["id"]
    moves = _erp_invoice(s, ref["number"])
    assert moves[0]["payment_state"] in {"not_paid", "partial"}
    for payment in _record(e, "erp", "account_payment"):
        rows = s.erp_rows("SELECT is_reconciled, amount FROM account_payment WHERE id = :id", id=int(payment["id"]))
        assert rows[0]["is_reconciled"] in (0, False)
        assert float(rows[0]["amount"]) == pytest.approx(charge["amount"] / 100)
    assert e["amount_at_risk"] == pytest.approx(charge["amount"] / 100)


def check_unmatched_record(s: Systems, e: dict) -> None:
    companies = s.hubspot_all("companies")
    known = {_norm(c["name"]) for c in companies}
    domains = {c.get("domain") for c in companies}
    first = e["records"][0]
    if first["system"] == "stripe":
        customer = s.stripe(first["id"])
        assert customer["metadata"] == {}
        assert _norm(customer["name"]) not in known
        assert customer["email"].split("@")[1] not in domains
        invoices = [s.stripe(r["id"]) for r in _record(e, "stripe", "invoice")]
        assert all(i["customer"] == first["id"] for i in invoices)
        assert e["amount_at_risk"] == pytest.approx(sum(i["total"] for i in invoices) / 100)
    else:
        client = s.harvest("clients", first["id"])
        assert _norm(client["name"]) not in known


CHECKS: dict[str, Callable[[Systems, dict], None]] = {
    name: globals()[f"check_{name}"] for name in FAULT_TYPES
}


@pytest.fixture(scope="module")
def faulty_firm(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("faulty") / "firm"
    generate(data_dir, scale="small", seed=77, as_of="2026-09-15", fault_rates=fault_rates(0.12),
             noise_rates=noise_rates(0.3, tax=1.0))
    advance(data_dir, 40)
    return data_dir


def test_every_fault_type_is_injected(faulty_firm: Path) -> None:
    entries = ground_truth.faults(ground_truth.read(faulty_firm / "ground_truth.jsonl"))
    assert {e["exception_type"] for e in entries} == set(FAULT_TYPES)
    assert len({e["fault_id"] for e in entries}) == len(entries)


def check_each(data_dir: Path, entries: list[dict], checks: dict[str, Callable[[Systems, dict], None]],
               kind: str, name: str) -> None:
    """Run each entry's check against the systems; a failure names the entry."""
    systems = Systems(data_dir)
    try:
        for entry in entries:
            try:
                checks[entry[kind]](systems, entry)
            except AssertionError as exc:
                raise AssertionError(f"{entry[name]}: {json.dumps(entry)[:400]}") from exc
    finally:
        systems.close()


def test_every_entry_states_a_real_inconsistency(faulty_firm: Path) -> None:
    entries = ground_truth.faults(ground_truth.read(faulty_firm / "ground_truth.jsonl"))
    assert all(e["currency"] in {"USD", "GBP", "EUR"} and e["amount_at_risk"] >= 0 for e in entries)
    check_each(faulty_firm, entries, CHECKS, "exception_type", "fault_id")


VAT_PERCENT = {"GB": 20, "DE": 19, "FR": 20, "NL": 21}


def check_valid_tax(s: Systems, e: dict) -> None:
    """Each invoice carries the VAT its client's country and VAT number call for, on every line,
    and the ERP posted the same split of net and tax."""
    reverse = e["details"]["treatment"] == "reverse_charge"
    company = s.hubspot("companies", e["customer"]["hubspot_company_id"])
    country = s.erp_rows("SELECT code FROM res_country WHERE name = :name", name=company["country"])[0]["code"]
    expected = 0 if reverse else VAT_PERCENT[country]
    for record in e["records"]:
        invoice = s.stripe(record["id"])
        lines = [json.loads(doc) for (doc,) in s.con.execute(
            "SELECT doc FROM stripe_invoice_lines WHERE invoice = ? ORDER BY seq", (record["id"],))]
        for line in lines:
            (entry,) = line["tax_amounts"]
            assert entry["taxability_reason"] == ("reverse_charge" if reverse else "standard_rated")
            assert entry["amount"] == (line["amount"] * expected + 50) // 100
        assert invoice["tax"] == sum(line["tax_amounts"][0]["amount"] for line in lines)
        assert invoice["total"] == invoice["total_excluding_tax"] + invoice["tax"]
        assert ("Reverse charge" in (invoice["footer"] or "")) == reverse
        moves = s.erp_rows("SELECT amount_untaxed, amount_tax, amount_total FROM account_move "
                           "WHERE ref = :number AND move_type = 'out_invoice'", number=invoice["number"])
        for move in moves:  # an invoice never posted, or posted with another amount, is a fault of its own
            if round(move["amount_total"] * 100) == invoice["total"]:
                assert round(move["amount_tax"] * 100) == invoice["tax"]


def check_valid_partial_payment(s: Systems, e: dict) -> None:
    """Instalments reconciled with the ERP invoice add up to what it is paid; the Stripe invoice
    is open until the last, then paid out of band with no charge."""
    invoice = s.stripe(_record(e, "stripe", "invoice")[0]["id"])
    payments = _record(e, "erp", "account_payment")
    rows = s.erp_rows("SELECT p.amount FROM account_payment p JOIN account_move__account_payment l "
                      "ON l.payment_id = p.id JOIN account_move m ON m.id = l.invoice_id "
                      "WHERE m.ref = :number AND p.payment_type = 'inbound'", number=invoice["number"])
    assert len(rows) == len(payments) >= 1
    (move,) = s.erp_rows("SELECT m.amount_total, m.amount_residual, m.payment_state, c.name AS currency "
                         "FROM account_move m JOIN res_currency c ON c.id = m.currency_id "
                         "WHERE m.ref = :number AND m.move_type = 'out_invoice'", number=invoice["number"])
    paid = sum(float(r["amount"]) for r in rows)
    complete = len(rows) == e["details"]["instalments"]
    if move["currency"] == invoice["currency"].upper():
        assert float(move["amount_residual"]) == pytest.approx(float(move["amount_total"]) - paid, abs=0.005)
    else:  # booked in the entity's currency: instalments converted on their days, the rest an FX difference
        assert (float(move["amount_residual"]) == 0) == complete
    assert move["payment_state"] == ("paid" if complete else "partial")
    assert invoice["charge"] is None
    assert invoice["status"] == "open" or (invoice["status"] == "paid" and invoice["paid_out_of_band"])


def check_valid_refund(s: Systems, e: dict) -> None:
    """A post-payment credit note refunded on the charge; the invoice stays paid."""
    invoice = s.stripe(_record(e, "stripe", "invoice")[0]["id"])
    note = s.stripe(_record(e, "stripe", "credit_note")[0]["id"])
    charge = s.stripe(_record(e, "stripe", "charge")[0]["id"])
    assert invoice["status"] == "paid" and invoice["post_payment_credit_notes_amount"] == note["total"]
    assert note["type"] == "post_payment" and note["refund"] and note["invoice"] == invoice["id"]
    assert charge["amount_refunded"] == note["total"] < charge["amount"] == invoice["total"]
    for refund in _record(e, "erp", "account_move"):
        (move,) = s.erp_rows("SELECT amount_total, move_type, reversed_entry_id FROM account_move WHERE id = :id",
                             id=int(refund["id"]))
        assert move["move_type"] == "out_refund" and round(float(move["amount_total"]) * 100) == note["total"]


def check_valid_homonym(s: Systems, e: dict) -> None:
    """Two companies, one name (or nearly), and nothing else in common."""
    first, second = (s.hubspot("companies", r["id"]) for r in e["records"])
    def base(name: str) -> str:
        return _norm(name.split()[0])
    if e["details"]["near"]:
        assert base(second["name"]) == base(first["name"]) + "s"
    else:
        assert base(second["name"]) == base(first["name"])
    assert e["records"][0]["domain"] != e["records"][1]["domain"]
    assert e["records"][0]["vat"] != e["records"][1]["vat"]
    for record, company in zip(e["records"], (first, second)):
        assert company.get("domain") in (None, record["domain"])


def check_valid_extra_domain(s: Systems, e: dict) -> None:
    company = s.hubspot("companies", _record(e, "hubspot", "company")[0]["id"])
    customer = s.stripe(_record(e, "stripe", "customer")[0]["id"])
    extra = _record(e, "hubspot", "company")[0]["additional_domain"]
    assert company["hs_additional_domains"] == extra != company.get("domain")
    assert customer["email"].endswith("@" + extra)


def check_valid_vat_format(s: Systems, e: dict) -> None:
    typed = s.hubspot("companies", _record(e, "hubspot", "company")[0]["id"])["vat_number"]
    for partner in _record(e, "erp", "res_partner"):
        (row,) = s.erp_rows("SELECT vat FROM res_partner WHERE id = :id", id=int(partner["id"]))
        compact = typed.replace(" ", "")
        assert typed != row["vat"] and row["vat"] in (compact, row["vat"][:2] + compact)


def check_valid_harvest_marking(s: Systems, e: dict) -> None:
    """Harvest shows the month's marked entries invoiced, though its invoicing is off."""
    project = int(e["records"][0]["id"])
    month = e["details"]["billing_month"]
    (marked,) = s.con.execute("SELECT count(*) FROM hv_time_entries WHERE project_id = ? AND is_billed = 1 "
                              "AND substr(spent_date, 1, 7) = ?", (project, month)).fetchone()
    assert marked == e["details"]["marked_entries"] > 0


def check_valid_harvest_correction(s: Systems, e: dict) -> None:
    """Harvest shows the corrected hours, not those first logged, on an approved entry."""
    (entry,) = e["records"]
    hours, closed = s.con.execute("SELECT hours, is_closed FROM hv_time_entries WHERE id = ?",
                                  (int(entry["id"]),)).fetchone()
    assert closed and hours == e["details"]["hours"] != e["details"]["hours_logged"]


def check_valid_harvest_delete(s: Systems, e: dict) -> None:
    """The copy gone from Harvest; the entry it copied still there, with the same time."""
    copy, original = e["records"]
    assert s.harvest("time_entries", copy["id"]) is None
    kept = s.harvest("time_entries", original["id"])
    assert kept is not None and kept["hours"] == e["details"]["hours"]


def check_valid_harvest_move(s: Systems, e: dict) -> None:
    """The entry on its own project (another than the one it was logged on), approved again."""
    entry, logged_on, own = e["records"]
    row = s.harvest("time_entries", entry["id"])
    assert row["project_id"] == int(own["id"]) != int(logged_on["id"])
    assert row["is_closed"] and row["updated_at"] >= row["created_at"]


def check_valid_slow_posting(s: Systems, e: dict) -> None:
    """Posted three to five days after finalisation: late, but inside the five-day SLA."""
    invoice = s.stripe(_record(e, "stripe", "invoice")[0]["id"])
    for move in _erp_invoice(s, invoice["number"]):
        created = move["create_date"] if isinstance(move["create_date"], dt.datetime) \
            else dt.datetime.fromisoformat(str(move["create_date"]))
        lag = created.replace(tzinfo=dt.timezone.utc).timestamp() - invoice["status_transitions"]["finalized_at"]
        assert 3 * 86_400 <= lag < 5 * 86_400


def check_valid_fx_calendar(s: Systems, e: dict) -> None:
    day = dt.date.fromisoformat(e["details"]["day"])
    rows = s.erp_rows("SELECT id FROM res_currency_rate WHERE name = :day", day=day)
    weekend = day.weekday() >= 5
    assert weekend == bool(rows) and (len(rows) == 2 if weekend else True)


def check_valid_fx_rounding(s: Systems, e: dict) -> None:
    """The ERP books the invoice in another currency; converted back at the last rate its table
    holds on or before the accounting date, it is the Stripe total to the cent."""
    invoice = s.stripe(_record(e, "stripe", "invoice")[0]["id"])
    (move,) = s.erp_rows("SELECT m.amount_total, m.date, c.name AS currency FROM account_move m "
                         "JOIN res_currency c ON c.id = m.currency_id WHERE m.id = :id",
                         id=int(_record(e, "erp", "account_move")[0]["id"]))
    assert move["currency"] != invoice["currency"].upper()

    rates = ErpRates.read(s.erp)
    rate = rates.per_dollar(invoice["currency"].upper(), move["date"]) / rates.per_dollar(move["currency"], move["date"])
    assert abs(Decimal(str(move["amount_total"])) * rate - Decimal(invoice["total"]) / 100) <= Decimal("0.011")


def check_valid_erp_archive(s: Systems, e: dict) -> None:
    (partner,) = s.erp_rows("SELECT active FROM res_partner WHERE id = :id", id=int(e["records"][0]["id"]))
    assert not partner["active"]


def check_valid_crm_merge(s: Systems, e: dict) -> None:
    winner, loser = e["records"]
    assert s.hubspot("companies", loser["id"]) is None
    assert s.hubspot("companies", winner["id"])["hs_merged_object_ids"] == loser["id"]


def check_valid_stripe_delete(s: Systems, e: dict) -> None:
    """The client's own customer live; the one created by mistake a tombstone, nothing billed to it."""
    own, extra = e["records"]
    assert not s.stripe(own["id"]).get("deleted")
    assert s.stripe(extra["id"]) == {"id": extra["id"], "object": "customer", "deleted": True}
    assert s.con.execute("SELECT count(*) FROM stripe_objects WHERE customer = ? AND object = 'invoice'",
                         (extra["id"],)).fetchone()[0] == 0


def check_valid_crm_restore(s: Systems, e: dict) -> None:
    """Restored: the same company live again, changed at the restore; else still archived."""
    (company,) = e["records"]
    archived, archived_at, updated = s.con.execute(
        "SELECT archived, archived_at, updated_at FROM hs_objects WHERE object_type = 'companies' AND id = ?",
        (int(company["id"]),)).fetchone()
    if e["details"]["restored"]:
        assert (archived, archived_at) == (0, None)
    else:
        assert archived == 1 and archived_at <= updated


def check_valid_full_credit(s: Systems, e: dict) -> None:
    """Stripe: paid by a credit note for the whole total, nothing collected, no charge; the ERP:
    reversed by an out_refund of the same total."""
    invoice = s.stripe(_record(e, "stripe", "invoice")[0]["id"])
    note = s.stripe(_record(e, "stripe", "credit_note")[0]["id"])
    assert invoice["status"] == "paid" and invoice["amount_paid"] == 0 and invoice["charge"] is None
    assert note["total"] == invoice["total"] == invoice["pre_payment_credit_notes_amount"]
    for move in _erp_invoice(s, invoice["number"]):
        refunds = _record(e, "erp", "account_move")
        assert move["payment_state"] == ("reversed" if refunds else "not_paid")


def check_valid_one_transfer(s: Systems, e: dict) -> None:
    """Each invoice is paid out of band in Stripe with no charge; once the ERP has the transfer,
    one payment for their sum is matched with every one of them and each shows paid."""
    invoices = [s.stripe(r["id"]) for r in _record(e, "stripe", "invoice")]
    assert len(invoices) >= 2 and len({i["customer"] for i in invoices}) == 1
    for invoice in invoices:
        assert invoice["status"] == "paid" and invoice["paid_out_of_band"] and invoice["charge"] is None
    for payment in _record(e, "erp", "account_payment"):
        rows = s.erp_rows("SELECT p.amount, m.ref, m.payment_state FROM account_payment p "
                          "JOIN account_move__account_payment l ON l.payment_id = p.id "
                          "JOIN account_move m ON m.id = l.invoice_id WHERE p.id = :id", id=payment["id"])
        assert sorted(r["ref"] for r in rows) == sorted(i["number"] for i in invoices)
        assert {r["payment_state"] for r in rows} == {"paid"}
        assert round(rows[0]["amount"] * 100) == sum(i["total"] for i in invoices)


def check_valid_overpayment(s: Systems, e: dict) -> None:
    """The invoice is paid out of band in Stripe with no charge; once the ERP has the transfer,
    it is one payment of more than the invoice's total, matched with it, not wholly reconciled,
    and the invoice shows paid with nothing left to pay."""
    (ref,) = _record(e, "stripe", "invoice")
    invoice = s.stripe(ref["id"])
    assert invoice["status"] == "paid" and invoice["paid_out_of_band"] and invoice["charge"] is None
    for payment in _record(e, "erp", "account_payment"):
        (row,) = s.erp_rows("SELECT p.amount, p.is_reconciled, m.ref, m.payment_state, m.amount_residual "
                            "FROM account_payment p JOIN account_move__account_payment l ON l.payment_id = p.id "
                            "JOIN account_move m ON m.id = l.invoice_id WHERE p.id = :id", id=payment["id"])
        assert (row["ref"], row["payment_state"], row["amount_residual"], row["is_reconciled"]) == (
            invoice["number"], "paid", 0, False)
        excess = round(row["amount"] * 100) - invoice["total"]
        assert 0 < excess <= 10_000 and excess == round(float(e["details"]["excess"]) * 100)


VALID_CHECKS: dict[str, Callable[[Systems, dict], None]] = {
    "one_transfer": check_valid_one_transfer, "overpayment": check_valid_overpayment,
    "full_credit": check_valid_full_credit,
    "crm_merge": check_valid_crm_merge, "crm_restore": check_valid_crm_restore,
    "stripe_delete": check_valid_stripe_delete,
    "erp_archive": check_valid_erp_archive,
    "slow_posting": check_valid_slow_posting, "fx_calendar": check_valid_fx_calendar,
    "fx_rounding": check_valid_fx_rounding,
    "harvest_marking": check_valid_harvest_marking, "harvest_correction": check_valid_harvest_correction,
    "harvest_delete": check_valid_harvest_delete, "harvest_move": check_valid_harvest_move,
    "tax": check_valid_tax, "partial_payment": check_valid_partial_payment, "refund": check_valid_refund,
    "homonym": check_valid_homonym, "extra_domain": check_valid_extra_domain, "vat_format": check_valid_vat_format,
}


def test_every_valid_entry_is_what_it_says(faulty_firm: Path) -> None:
    entries = ground_truth.valid(ground_truth.read(faulty_firm / "ground_truth.jsonl"))
    assert {e["noise"] for e in entries} == set(NOISE_KINDS)
    assert len({e["valid_id"] for e in entries}) == len(entries)
    check_each(faulty_firm, entries, VALID_CHECKS, "noise", "valid_id")
