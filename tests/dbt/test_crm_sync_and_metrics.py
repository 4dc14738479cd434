"""The CRM sync models, the stale-CRM exception, the business metrics and the audit snapshots.

- The sync models carry exactly the CRM contract (reverse_etl/contract.py), one row per live HubSpot record.
- `crm_financial_status_stale` lists exactly the companies whose financial properties in
  HubSpot differ from `sync_hubspot__companies`: all of them before any push, none after the
  values were written through the sandbox's HubSpot API (a miniature of the reverse ETL) and
  landed again, and exactly one after one company's value is changed in HubSpot.
- After `sandbox advance` and a rebuild, the snapshots hold the earlier version of what changed.
- The metrics are sane: no negative latency, aging buckets that add up to AR, the AR of the
  as-of month equal to what the CRM shows.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, Iterator

import pytest
import requests

from sandbox.lifecycle import advance
from tests.dbt.conftest import Warehouse, served_copy

# The CRM contract (reverse_etl/contract.py): property -> (HubSpot type, field type).
COMPANY_PROPERTIES: dict[str, tuple[str, str]] = {
    "ar_balance": ("number", "number"),
    "ar_overdue_amount": ("number", "number"),
    "ar_oldest_overdue_days": ("number", "number"),
    "last_invoice_date": ("date", "date"),
    "last_payment_date": ("date", "date"),
    "open_disputes_count": ("number", "number"),
    "unbilled_wip_amount": ("number", "number"),
    "lifetime_billed": ("number", "number"),
    "financial_status": ("enumeration", "select"),
    "open_data_issues_count": ("number", "number"),
    "financial_status_synced_at": ("datetime", "date"),
    "billing_currency": ("string", "text"),
}
DEAL_PROPERTIES = ("contract_value_erp", "billed_to_date", "remaining_to_bill", "scope_mismatch")
FINANCIAL_STATUSES = ("good_standing", "overdue", "in_dispute", "collections")
AGING_BUCKETS = ("current", "1_30", "31_60", "61_90", "over_90")

STALE_SQL = """
select source_record_id, details
from reconciliation.exc_crm_financial_status_stale
"""


def columns(warehouse: Warehouse, schema: str, table: str) -> list[str]:
    return [name for (name,) in warehouse.query(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", schema, table)]


def stale_companies(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """Stale company id -> {property: (crm value, concord value)}."""
    stale = {}
    for company_id, details in warehouse.query(STALE_SQL):
        differing = json.loads(details)["differing_properties"]
        stale[company_id] = {d["property"]: (d["crm"], d["concord"]) for d in differing}
    return stale


def synced_companies(warehouse: Warehouse) -> set[str]:
    return {company_id for (company_id,) in warehouse.query(
        "select hubspot_company_id from crm_sync.sync_hubspot__companies")}


# --- a miniature of the reverse ETL: the sandbox's HubSpot API, real HTTP ----------------------


class HubSpot:
    def __init__(self, warehouse: Warehouse):
        settings = warehouse.server.client_settings()
        self.base_url = settings["SOURCES__HUBSPOT__BASE_URL"].rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {settings['SOURCES__HUBSPOT__ACCESS_TOKEN']}"

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=30)

    def create_company_properties(self) -> None:
        group = self.post("/crm/v3/properties/companies/groups",
                          {"name": "financial_status", "label": "Financial status"})
        assert group.status_code == 201, group.text
        for name, (kind, field) in COMPANY_PROPERTIES.items():
            definition: dict[str, Any] = {"name": name, "label": name.replace("_", " ").capitalize(), "type": kind,
                                          "fieldType": field, "groupName": "financial_status"}
            if name == "financial_status":
                definition["options"] = [{"label": s.replace("_", " ").capitalize(), "value": s}
                                         for s in FINANCIAL_STATUSES]
            created = self.post("/crm/v3/properties/companies", definition)
            assert created.status_code == 201, created.text

    def update_companies(self, values: dict[str, dict[str, str]]) -> None:
        inputs = [{"id": company_id, "properties": properties} for company_id, properties in values.items()]
        for start in range(0, len(inputs), 100):
            response = self.post("/crm/v3/objects/companies/batch/update", {"inputs": inputs[start:start + 100]})
            assert response.status_code == 200, response.text


def as_property_value(value: Any) -> str:
    """A sync model value as HubSpot takes it: text; dates as YYYY-MM-DD; null clears ("")."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def sync_values(warehouse: Warehouse) -> dict[str, dict[str, str]]:
    names = list(COMPANY_PROPERTIES)
    rows = warehouse.query(f"select hubspot_company_id, {', '.join(names)} from crm_sync.sync_hubspot__companies")
    return {row[0]: {name: as_property_value(value) for name, value in zip(names, row[1:])} for row in rows}


def snapshot_versions(warehouse: Warehouse, snapshot: str, key: str) -> dict[str, int]:
    return dict(warehouse.query(f"select {key}, count(*) from snapshots.{snapshot} group by {key}"))


# --- the sync models against the CRM contract ---------------------------------------------------


def test_sync_models_carry_exactly_the_crm_contract(built_firm: Warehouse) -> None:
    w = built_firm
    assert columns(w, "crm_sync", "sync_hubspot__companies") == ["hubspot_company_id", *COMPANY_PROPERTIES]
    assert columns(w, "crm_sync", "sync_hubspot__deals") == ["hubspot_deal_id", *DEAL_PROPERTIES]

    for model, key, raw in (("sync_hubspot__companies", "hubspot_company_id", "companies"),
                            ("sync_hubspot__deals", "hubspot_deal_id", "deals")):
        synced = [record_id for (record_id,) in w.query(f"select {key} from crm_sync.{model}")]
        live = {record_id for (record_id,) in w.query(f"select id from raw_hubspot.{raw} where not archived")}
        archived = {record_id for (record_id,) in w.query(f"select id from raw_hubspot.{raw} where archived")}
        assert len(synced) == len(set(synced)), f"{model}: a CRM record has several rows"
        assert set(synced) == live, f"{model}: not one row per live CRM record"
        assert not set(synced) & archived

    statuses = {s for (s,) in w.query("select distinct financial_status from crm_sync.sync_hubspot__companies")}
    assert statuses <= set(FINANCIAL_STATUSES) and len(statuses) > 1
    (bad,) = w.query("""
        select count(*) from crm_sync.sync_hubspot__companies
        where billing_currency is null or ar_balance < 0 or ar_overdue_amount < 0
           or ar_overdue_amount > ar_balance or ar_oldest_overdue_days < 0 or unbilled_wip_amount < 0
           or lifetime_billed < 0 or open_disputes_count < 0 or open_data_issues_count < 0
           or (financial_status = 'good_standing' and ar_overdue_amount > 0.01)
           or (financial_status = 'overdue' and ar_overdue_amount <= 0.01)
           or (ar_overdue_amount > 0.01) <> (ar_oldest_overdue_days > 0)
           or (open_disputes_count > 0 and financial_status not in ('in_dispute', 'collections'))
    """)[0]
    assert bad == 0
    (deals_bad,) = w.query("""
        select count(*) from crm_sync.sync_hubspot__deals
        where billed_to_date < 0
           or (contract_value_erp is null) <> (remaining_to_bill is null)
           or abs(contract_value_erp - billed_to_date - remaining_to_bill) > 0.001
    """)[0]
    assert deals_bad == 0
    (contracted,) = w.query("select count(*) from crm_sync.sync_hubspot__deals where contract_value_erp is not null")[0]
    assert contracted > 0


def test_company_figures_are_the_customers_open_receivables(built_firm: Warehouse) -> None:
    """Where a client is billed only in its billing currency, ar_balance and ar_overdue_amount are
    the sums of its open receivables, the very rows the AR metrics age."""
    rows = built_firm.query("""
        with records as (
            select record_id, customer_id from intermediate.int_customer_records where system = 'hubspot'
        ),
        single_currency as (
            select receivables.customer_id,
                   sum(receivables.open_amount) as open_amount,
                   sum(case when receivables.is_overdue then receivables.open_amount else 0 end) as overdue_amount
            from intermediate.int_receivables as receivables
            inner join intermediate.int_customer_financials as financials
                on receivables.customer_id = financials.customer_id
            group by receivables.customer_id, financials.billing_currency
            having count(*) filter (where receivables.currency_code <> financials.billing_currency) = 0
        )
        select sync.hubspot_company_id, sync.ar_balance, single_currency.open_amount,
               sync.ar_overdue_amount, single_currency.overdue_amount
        from crm_sync.sync_hubspot__companies as sync
        inner join records on sync.hubspot_company_id = records.record_id
        inner join single_currency on records.customer_id = single_currency.customer_id
    """)
    assert len(rows) > 10
    for company_id, ar_balance, open_amount, overdue, open_overdue in rows:
        assert (ar_balance, overdue) == (open_amount, open_overdue), company_id


# --- crm_financial_status_stale, push by push ---------------------------------------------------


@pytest.fixture(scope="module")
def crm_firm(built_firm: Warehouse, tmp_path_factory) -> Iterator[Warehouse]:
    """A copy of the built firm: these tests write to its CRM and move its clock."""
    with served_copy(built_firm, tmp_path_factory.mktemp("crm_sync")) as warehouse:
        yield warehouse


def test_stale_lists_exactly_the_companies_the_crm_disagrees_with(crm_firm: Warehouse) -> None:
    w = crm_firm

    # before any push HubSpot holds none of the properties: every synced company is stale
    synced = synced_companies(w)
    stale = stale_companies(w)
    assert set(stale) == synced
    assert all(props["financial_status"][0] is None for props in stale.values())
    assert all("financial_status_synced_at" not in props for props in stale.values())
    in_final = {record_id for (record_id,) in w.query(
        "select source_record_id from reconciliation.reconciliation_exceptions "
        "where exception_type = 'crm_financial_status_stale'")}
    assert in_final == synced

    # push every company's values, land them again: nothing is stale
    hubspot = HubSpot(w)
    hubspot.create_company_properties()
    pushed = sync_values(w)
    hubspot.update_companies(pushed)
    w.ingest()
    w.build_models()  # the session's build ran the tests
    assert stale_companies(w) == {}

    # change one value in the CRM: exactly that company is stale, on exactly that property
    target = sorted(pushed)[0]
    wrong = str(Decimal(pushed[target]["ar_balance"]) + Decimal("100.00"))
    hubspot.update_companies({target: {"ar_balance": wrong}})
    w.ingest()
    w.build_models()  # the session's build ran the tests
    assert stale_companies(w) == {target: {"ar_balance": (wrong, pushed[target]["ar_balance"])}}

    # within the amount tolerance is no difference
    hubspot.update_companies({target: {"ar_balance": str(Decimal(pushed[target]["ar_balance"]) + Decimal("0.01"))}})
    w.ingest()
    w.build_models()  # the session's build ran the tests
    assert stale_companies(w) == {}


def test_snapshots_record_what_changed_after_a_simulated_week(crm_firm: Warehouse) -> None:
    w = crm_firm
    w.build_models()
    companies_before = snapshot_versions(w, "snap_sync_hubspot__companies", "hubspot_company_id")
    contracts_before = snapshot_versions(w, "snap_contracts", "sale_order_id")
    current_before = dict(w.query("select hubspot_company_id, ar_balance from crm_sync.sync_hubspot__companies"))
    assert set(companies_before) == synced_companies(w)
    (contracts,) = w.query("select count(*) from core.contracts")[0]
    assert len(contracts_before) == contracts

    advance(w.data_dir, 7)
    w.ingest()
    w.build_models()

    companies_after = snapshot_versions(w, "snap_sync_hubspot__companies", "hubspot_company_id")
    changed = {company_id for company_id, versions in companies_after.items()
               if versions > companies_before.get(company_id, 0)}
    assert changed, "a simulated week changed no company's financial figures"
    # the earlier value is kept, closed when the new one was seen; one current version each
    for company_id in changed:
        versions = w.query("""
            select ar_balance, dbt_valid_from, dbt_valid_to from snapshots.snap_sync_hubspot__companies
            where hubspot_company_id = ? order by dbt_valid_from""", company_id)
        assert [valid_to is None for _, _, valid_to in versions].count(True) == 1
        assert all(earlier[2] == later[1] for earlier, later in zip(versions, versions[1:]))
    moved = [c for c in changed if c in current_before
             and w.query("select ar_balance from crm_sync.sync_hubspot__companies where hubspot_company_id = ?", c)
             [0][0] != current_before[c]]
    for company_id in moved:
        history = [balance for (balance,) in w.query(
            "select ar_balance from snapshots.snap_sync_hubspot__companies where hubspot_company_id = ? "
            "order by dbt_valid_from", company_id)]
        assert current_before[company_id] in history[:-1]

    # every contract has exactly one current version, equal to the contract as it is now
    (mismatched,) = w.query("""
        select count(*) from core.contracts
        full outer join (select * from snapshots.snap_contracts where dbt_valid_to is null) as current_version
            using (sale_order_id)
        where current_version.sale_order_id is null or contracts.sale_order_id is null
           or contracts.amount_total <> current_version.amount_total or contracts.state <> current_version.state
    """)[0]
    assert mismatched == 0
    (terms_current,) = w.query("select count(*) from snapshots.snap_billing_terms where dbt_valid_to is null")[0]
    (terms,) = w.query("select count(*) from intermediate.int_billing_terms")[0]
    assert terms_current == terms


# --- metrics --------------------------------------------------------------------------------------


def test_metrics_have_sane_values(built_firm: Warehouse) -> None:
    w = built_firm

    # latencies are never negative, and there are some to judge
    for table, column in (("project_activations", "activation_days"), ("project_activations", "awaiting_days"),
                          ("invoice_readiness", "readiness_latency_days"), ("invoice_readiness", "waiting_days")):
        (negative, present) = w.query(f"select count(*) filter (where {column} < 0), count({column}) "
                                      f"from metrics.{table}")[0]
        assert negative == 0, f"{table}.{column}"
        assert present > 0, f"{table}.{column} is never measured"
    (avg_readiness,) = w.query("select avg(readiness_latency_days) from metrics.invoice_readiness")[0]
    assert 0 < avg_readiness < 60  # T&M time is invoiced on the 12th of the next month

    # aging buckets add up to AR, in both currencies
    functional = " + ".join(f"ar_{b}_functional" for b in AGING_BUCKETS)
    reporting = " + ".join(f"ar_{b}_reporting" for b in AGING_BUCKETS)
    (unbalanced,) = w.query(f"""
        select count(*) from metrics.legal_entity_monthly_metrics
        where ar_balance_functional <> {functional} or ar_balance_reporting <> {reporting}
           or ar_balance_reporting < 0 or billed_reporting < 0 or unbilled_wip_amount_reporting < 0
           or dso_days < 0 or deals_activated > deals_won or avg_activation_days < 0
    """)[0]
    assert unbalanced == 0

    # one row per legal entity (and "unassigned") and month; AR measured in every month
    (rows, keys, months, entities, with_ar) = w.query("""
        select count(*), count(distinct legal_entity_month_id), count(distinct month),
               count(distinct coalesce(legal_entity_name, '?')), count(*) filter (where ar_balance_reporting > 0)
        from metrics.legal_entity_monthly_metrics
    """)[0]
    assert rows == keys == months * entities and with_ar > 0

    # the AR of the as-of month is what is open now: the receivables the CRM sums
    last_month_ar, last_month_open = w.query("""
        select sum(ar_balance_reporting), sum(open_invoices) from metrics.legal_entity_monthly_metrics
        where month = (select max(month) from metrics.legal_entity_monthly_metrics)
    """)[0]
    (open_now,) = w.query("select count(*) from intermediate.int_receivables where is_open")[0]
    (balances_now,) = w.query("""
        select sum(open_amount_reporting) from metrics.receivable_balances
        where month = (select max(month) from metrics.receivable_balances)
    """)[0]
    assert last_month_open == open_now and last_month_ar == balances_now

    # unbilled WIP by month adds up to the CRM's unbilled WIP (in each client's own currency)
    (wip_metrics,) = w.query("select sum(unbilled_wip_amount_reporting) from metrics.legal_entity_monthly_metrics")[0]
    (wip_projects,) = w.query(
        "select sum(case when u.currency_code = 'USD' then u.unbilled_amount else round(u.unbilled_amount * fx.rate, 2) end) "
        "from intermediate.int_unbilled_time u left join intermediate.int_fx_rates fx on fx.from_currency = u.currency_code "
        "and fx.to_currency = 'USD' and fx.rate_date = cast(cast(? as timestamp) as date)", w.as_of)[0]
    assert wip_metrics > 0 and abs(wip_metrics - Decimal(str(wip_projects))) <= Decimal("0.01") * w.query(
        "select count(*) from intermediate.int_unbilled_time where unbilled_amount > 0")[0][0]
