"""The foundation of the dbt project on sandbox firms: staging keeps every raw row, identity
resolution finds every real client exactly once and leaves every orphan unmatched, and the
core marts hold together.

The truth comes from the sandbox itself: its id schemes (`sandbox.world.derived`) say which
client each system record belongs to, and `ground_truth.jsonl` lists the duplicates and the
orphans it injected.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterator

import pytest

from sandbox import ground_truth
from sandbox.stripe_objects import stripe_id
from sandbox.world.derived import (
    ERP_CLIENT_PARTNER_BASE, ERP_DUPLICATE_PARTNER_BASE, ERP_INVOICE_CONTACT_BASE, HS_COMPANY_BASE,
    HS_DUPLICATE_COMPANY_BASE, HV_CLIENT_BASE, HV_DUPLICATE_CLIENT_BASE, HV_ORPHAN_CLIENT_BASE,
)
from tests.dbt.conftest import Warehouse, build_warehouse, copy_of

# What the foundation owns (and the seeds it reads), built on its own with only the tests of
# those models (`cautious`: not the tests of models built on top, which are other tests' business).
FOUNDATION = "staging +marts.core"

# staging model -> the raw table it stages, row for row
# Raw tables a staging model reads beside its own: which Harvest time entries still exist.
READ_BESIDE = {"raw_harvest.time_entry_presence": "stg_harvest__time_entries"}
STAGED = {
    "stg_hubspot__companies": "raw_hubspot.companies",
    "stg_hubspot__contacts": "raw_hubspot.contacts",
    "stg_hubspot__contact_companies": "raw_hubspot.contacts__associations",
    "stg_hubspot__deals": "raw_hubspot.deals",
    "stg_hubspot__deal_companies": "raw_hubspot.deals__associations",
    "stg_hubspot__properties": "raw_hubspot.properties",
    "stg_hubspot__property_options": "raw_hubspot.properties__options",
    "stg_stripe__customers": "raw_stripe.customers",
    "stg_stripe__invoices": "raw_stripe.invoices",
    "stg_stripe__invoice_lines": "raw_stripe.invoices__lines",
    "stg_stripe__charges": "raw_stripe.charges",
    "stg_stripe__credit_notes": "raw_stripe.credit_notes",
    "stg_stripe__credit_note_lines": "raw_stripe.credit_notes__lines",
    "stg_stripe__disputes": "raw_stripe.disputes",
    "stg_harvest__clients": "raw_harvest.clients",
    "stg_harvest__projects": "raw_harvest.projects",
    "stg_harvest__users": "raw_harvest.users",
    "stg_harvest__tasks": "raw_harvest.tasks",
    "stg_harvest__time_entries": "raw_harvest.time_entries",
    "stg_harvest__expenses": "raw_harvest.expenses",
    "stg_erp__partners": "raw_erp.res_partner",
    "stg_erp__companies": "raw_erp.res_company",
    "stg_erp__currencies": "raw_erp.res_currency",
    "stg_erp__currency_rates": "raw_erp.res_currency_rate",
    "stg_erp__countries": "raw_erp.res_country",
    "stg_erp__journals": "raw_erp.account_journal",
    "stg_erp__sale_orders": "raw_erp.sale_order",
    "stg_erp__sale_order_lines": "raw_erp.sale_order_line",
    "stg_erp__account_moves": "raw_erp.account_move",
    "stg_erp__payments": "raw_erp.account_payment",
    "stg_erp__invoice_payments": "raw_erp.account_move__account_payment",
}


@pytest.fixture(scope="module")
def small_firm(loaded_warehouse: Warehouse, tmp_path_factory) -> Warehouse:
    """The session's small firm (seed 9), copied and built up to the core marts."""
    root = tmp_path_factory.mktemp("foundation9")
    warehouse = Warehouse(loaded_warehouse.data_dir, copy_of(loaded_warehouse, root), loaded_warehouse.server)
    warehouse.dbt("build", "--select", FOUNDATION, "--indirect-selection", "cautious")
    return warehouse


@pytest.fixture(scope="module", params=[(3, None), (5, 0.25)], ids=["seed3", "seed5-faulty"])
def other_firm(request, tmp_path_factory) -> Iterator[tuple[Warehouse, int]]:
    """Another small firm (a second seed, and one with four times the default fault rates, so
    every system holds duplicates), loaded and built up to the core marts."""
    seed, fault_rate = request.param
    for warehouse in build_warehouse(tmp_path_factory.mktemp(f"foundation{seed}"), seed=seed,
                                     fault_rate=fault_rate):
        warehouse.dbt("build", "--select", FOUNDATION, "--indirect-selection", "cautious")
        yield warehouse, seed


def test_build_passes_on_the_small_firm(small_firm: Warehouse) -> None:
    """`dbt build` of the foundation (models, data tests, unit tests) passed: the fixture raises
    otherwise. The core marts are not empty."""
    for mart in ("customers", "engagements", "contracts", "projects", "resources", "time_entries",
                 "invoices", "payments"):
        assert small_firm.query(f"select count(*) from core.{mart}")[0][0] > 0, mart


def test_staging_keeps_every_raw_row(small_firm: Warehouse) -> None:
    counts = {model: _counts(small_firm, f"staging.{model}", raw) for model, raw in STAGED.items()}
    assert {m: c for m, c in counts.items() if c[0] != c[1]} == {}


def test_every_table_dlt_lands_is_staged(small_firm: Warehouse) -> None:
    landed = {f"{schema}.{table}" for schema, table in small_firm.query(
        "select schema_name, table_name from duckdb_tables() "
        "where schema_name in ('raw_hubspot', 'raw_stripe', 'raw_harvest', 'raw_erp') "
        "and not starts_with(table_name, '_dlt') and table_name <> 'quarantine'")}
    assert landed - set(STAGED.values()) - set(READ_BESIDE) == set()


def test_small_firm_identity(small_firm: Warehouse) -> None:
    _assert_identity(small_firm, seed=9)


def test_other_firms_identity(other_firm: tuple[Warehouse, int]) -> None:
    warehouse, seed = other_firm
    _assert_identity(warehouse, seed=seed)


def test_core_links_hold(small_firm: Warehouse) -> None:
    """The engagement links the firm always keeps are followed: every contract's deal points back
    at it, every project with a code sits on its contract (unless the ERP lacks the client
    altogether), every ERP invoice shares its row with the Stripe invoice of its number."""
    w = small_firm
    assert w.query("""
        select count(*) from core.contracts c
        left join core.engagements e on e.sale_order_id = c.sale_order_id
        where c.has_deal and e.deal_id is null""")[0][0] == 0
    # a project without its contract belongs to a client the ERP lacks (customer_missing_in_erp)
    assert w.query("""
        select count(*) from core.projects p
        left join core.customers c on c.customer_id = p.customer_id
        where p.project_code is not null and p.sale_order_id is null
          and coalesce(c.has_erp_customer, true)""")[0][0] == 0
    assert w.query("""
        select count(*) from core.invoices i
        join staging.stg_erp__account_moves m on m.ref = i.invoice_number
        where m.move_type = 'out_invoice' and i.erp_move_id is null""")[0][0] == 0
    assert w.query("select count(*) from core.invoices where has_stripe and has_erp and stripe_total is null")[0][0] == 0
    # reporting amounts exist wherever the document amount does
    assert w.query("select count(*) from core.invoices where amount_total is not null and amount_total_reporting is null")[0][0] == 0
    assert w.query("select count(*) from core.time_entries where billable_value_reporting is null")[0][0] == 0


def test_unapplied_erp_payments_are_paired_with_their_charge(small_firm: Warehouse) -> None:
    """Every injected `payment_unapplied` fault shows as one payments row: the Stripe charge and
    the ERP payment side by side, the ERP payment not applied to any invoice."""
    truth = [e for e in _ground_truth(small_firm) if e["exception_type"] == "payment_unapplied"]
    assert truth, "the small firm should carry payment_unapplied faults"
    rows = set(small_firm.query(
        "select stripe_charge_id, cast(erp_payment_id as varchar) from core.payments "
        "where match_method = 'amount_and_customer' and not erp_is_applied"))
    expected = {(next(r["id"] for r in e["records"] if r["object"] == "charge"),
                 next(r["id"] for r in e["records"] if r["object"] == "account_payment")) for e in truth}
    assert expected <= rows


# -- helpers -----------------------------------------------------------------------------------

def _counts(w: Warehouse, model: str, raw: str) -> tuple[int, int]:
    return (w.query(f"select count(*) from {model}")[0][0], w.query(f"select count(*) from {raw}")[0][0])


def _ground_truth(w: Warehouse) -> list[dict]:
    """The faults (not the messy-but-valid entries) of the firm's ground truth."""
    return ground_truth.faults(ground_truth.read(Path(w.data_dir, "ground_truth.jsonl")))


def _true_client(system: str, record_id: str, stripe_clients: dict[str, int]) -> int | None:
    """The sandbox client a record belongs to, from the sandbox's id schemes; None for orphans."""
    if system == "hubspot":
        value = int(record_id)
        return value - (HS_DUPLICATE_COMPANY_BASE if value >= HS_DUPLICATE_COMPANY_BASE else HS_COMPANY_BASE)
    if system == "erp":
        value = int(record_id)
        assert value < ERP_INVOICE_CONTACT_BASE or value >= ERP_DUPLICATE_PARTNER_BASE, "a contact is no candidate"
        return value - (ERP_DUPLICATE_PARTNER_BASE if value >= ERP_DUPLICATE_PARTNER_BASE else ERP_CLIENT_PARTNER_BASE)
    if system == "harvest":
        value = int(record_id)
        if value >= HV_ORPHAN_CLIENT_BASE:
            return None
        return value - (HV_DUPLICATE_CLIENT_BASE if value >= HV_DUPLICATE_CLIENT_BASE else HV_CLIENT_BASE)
    return stripe_clients.get(record_id)


def _assert_identity(w: Warehouse, *, seed: int) -> None:
    clients = w.query(f"select count(*) from raw_hubspot.companies where cast(id as bigint) < {HS_DUPLICATE_COMPANY_BASE}")[0][0]
    stripe_clients = {stripe_id("cus", seed, kind, i): i for i in range(clients) for kind in ("client", "duplicate")}
    records = w.query("""
        select system, record_id, customer_id, is_unmatched, is_duplicate, is_primary
        from intermediate.int_customer_records""")
    customers_of_client: dict[int, set[str]] = defaultdict(set)
    clients_of_customer: dict[str, set[int]] = defaultdict(set)
    problems = []
    for system, record_id, customer_id, is_unmatched, _, _ in records:
        client = _true_client(system, record_id, stripe_clients)
        if client is None:
            if not is_unmatched:
                problems.append(f"orphan {system}:{record_id} matched to {customer_id}")
        elif is_unmatched:
            problems.append(f"{system}:{record_id} of client {client} left unmatched")
        else:
            customers_of_client[client].add(customer_id)
            clients_of_customer[customer_id].add(client)
    problems += [f"client {c} split over {len(ids)} customers" for c, ids in customers_of_client.items() if len(ids) > 1]
    problems += [f"customer {c} merges clients {sorted(ks)}" for c, ks in clients_of_customer.items() if len(ks) > 1]
    assert problems == []
    assert len(customers_of_client) == clients, "every HubSpot client is a customer"
    assert w.query("select count(*) from core.customers")[0][0] == clients

    truth = _ground_truth(w)
    duplicates = {(e["records"][1]["system"], str(e["records"][1]["id"]))
                  for e in truth if e["exception_type"] == "duplicate_customer"}
    orphans = {(e["records"][0]["system"], str(e["records"][0]["id"]))
               for e in truth if e["exception_type"] == "unmatched_record"}
    flagged = {(s, r) for s, r, _, _, dup, primary in records if dup and not primary}
    unmatched = {(s, r) for s, r, _, unm, _, _ in records if unm}
    assert flagged == duplicates
    assert unmatched == orphans
    summary = (f"seed {seed}: {clients} clients -> {len(clients_of_customer)} customers; "
               f"{len(flagged)} duplicates ({len(duplicates)} injected); "
               f"{len(unmatched)} unmatched ({len(orphans)} orphans injected)")
    print(summary)
