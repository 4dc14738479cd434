"""Scenario tests' harness. One run over every scenario: a clean firm, each scenario's people acting on it, the firm moved
on past every service level (stopping on the days some of them act a few days before the end),
what they left for later (finance's ERP edits among it), then the
pipeline: load, dbt, push to the CRM, what people did right after the push, and a second load
and dbt build, as the next hourly run would begin. Each scenario's test then reads what that
run made of its own client: exactly its exceptions, and none that the CRM is stale.

Scenarios register with `@scenario` in the test modules; the run plays those of the modules
collected, so running one module plays only its scenarios.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from decimal import Decimal
from typing import Any, Callable, Iterator

import pytest
import requests
from sqlalchemy import Engine

from reverse_etl.push import push
from reverse_etl.settings import Settings
from sandbox import erp_schema
from sandbox.lifecycle import advance, generate
from sandbox.server.app import RunningServer
from tests import vendor_truth
from tests.vendor_truth import AMOUNTS, DATES, OTHERS, ErpRates, crm_as_truth_types
from tests.dbt.conftest import Warehouse
from tests.reverse_etl.conftest import crm_values
from tests.scenarios.firm import AS_OF, DAYS, SEED, START, Client, Firm, clean_rates
from tests.scenarios.people import People



@dataclasses.dataclass(frozen=True, order=True)
class Exc:
    """One exception row as expected: its type, subject, owner and amount at risk."""

    type: str
    source_system: str
    source_record_id: str | None  # None: whichever record the rule takes as subject
    owner: str
    amount: str  # or AR_BALANCE: the client's balance by the vendors' records
    currency: str


AR_BALANCE = "ar_balance"


@dataclasses.dataclass
class Expect:
    """What a run must make of a scenario: exactly these exceptions about its client (and its
    `subjects`), and, for a billed client, CRM values equal to the vendors' records."""

    client: Client | None = None
    company_id: str | None = None
    exceptions: list[Exc] = dataclasses.field(default_factory=list)
    subjects: tuple[str, ...] = ()
    check_crm: bool = True
    mess: str | None = None  # the kind of valid mess the scenario makes (a noise kind where the generator makes it)
    holds: Callable[[], None] | None = None  # what else must hold after the run, read from the vendors

    @property
    def hubspot_company_id(self) -> str | None:
        return self.client.company_id if self.client else self.company_id


SCENARIOS: dict[str, Callable[[People, Firm], Expect]] = {}


def scenario(fn: Callable[[People, Firm], Expect]) -> Callable[[People, Firm], Expect]:
    SCENARIOS[fn.__name__] = fn
    return fn


def customer_id(hubspot_company_id: str) -> str:
    return hashlib.md5(f"hubspot-{hubspot_company_id}".encode()).hexdigest()


@dataclasses.dataclass
class Run:
    expected: dict[str, Expect]
    exceptions: list[dict[str, Any]]
    crm: dict[str, dict[str, str | None]]
    truth: dict[str, dict[str, Any]]
    units_per_dollar: dict[str, Decimal]
    warehouse: Warehouse

    def rows_about(self, expect: Expect) -> list[dict[str, Any]]:
        customer = customer_id(expect.hubspot_company_id) if expect.hubspot_company_id else None
        return [r for r in self.exceptions
                if (customer and r["customer_id"] == customer) or r["source_record_id"] in expect.subjects]

    def exceptions_about(self, expect: Expect) -> list[Exc]:
        return sorted(Exc(r["exception_type"], r["source_system"], r["source_record_id"], r["owner_system"],
                          str(Decimal(str(r["amount_at_risk"])).quantize(Decimal("0.01"))), r["currency"])
                      for r in self.rows_about(expect))

    def check_reporting_amounts(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Each amount in the reporting currency is the amount at the ERP's rate of the as-of day
        (the last one keyed on or before it), to the cent."""
        for r in rows:
            exact = Decimal(str(r["amount_at_risk"])) / self.units_per_dollar[r["currency"]]
            assert abs(Decimal(str(r["amount_at_risk_reporting"])) - exact) <= Decimal("0.005"), \
                f"{name}: {r['exception_type']} {r['amount_at_risk']} {r['currency']} is " \
                f"{r['amount_at_risk_reporting']} USD, at the ERP's rate {exact:.4f}"

    def _resolve(self, expect: Expect, e: Exc, found: list[Exc]) -> Exc:
        """An expected row with its open parts filled in: the subject the rule chose, the balance."""
        if e.source_record_id is None:
            e = dataclasses.replace(e, source_record_id=next((f.source_record_id for f in found if f.type == e.type),
                                                             None))
        if e.amount == AR_BALANCE:
            e = dataclasses.replace(e, amount=f"{self.truth[expect.hubspot_company_id]['ar_balance']:.2f}")
        return e

    def check(self, name: str) -> None:
        expect = self.expected[name]
        found = self.exceptions_about(expect)
        wanted = sorted(self._resolve(expect, e, found) for e in expect.exceptions)
        assert found == wanted, f"{name}: exceptions\n  found  {found}\n  wanted {wanted}"
        self.check_reporting_amounts(name, self.rows_about(expect))
        if expect.client and expect.check_crm:
            truth = self.truth[expect.client.company_id]
            shown = crm_as_truth_types(self.crm[expect.client.company_id])
            wrong = {k: (shown[k], truth[k]) for k in (*AMOUNTS, *DATES, *OTHERS) if shown[k] != truth[k]}
            assert not wrong, f"{name}: CRM (shown, vendors' records): {wrong}"
        if expect.holds:
            expect.holds()


@pytest.fixture(scope="session")
def run(tmp_path_factory, request) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("scenarios")
    data_dir = root / "sandbox"
    faults, noise = clean_rates()
    generate(data_dir, scale="small", seed=SEED, as_of=AS_OF, start=START, fault_rates=faults, noise_rates=noise)
    with RunningServer(data_dir) as server:
        settings = server.client_settings()
        engine = erp_schema.engine_of(data_dir)

        def clock() -> dt.datetime:
            now_ms = requests.get(f"{server.base_url}/_sandbox/health", timeout=10).json()["now_ms"]
            return dt.datetime.fromtimestamp(now_ms / 1000, dt.timezone.utc)

        people, firm = People(settings, engine, clock), Firm()
        wanted = {item.module.__name__ for item in request.session.items if "run" in item.fixturenames}
        expected = {name: fn(people, firm) for name, fn in SCENARIOS.items() if fn.__module__ in wanted}
        elapsed = 0
        for days_left in sorted(people.before_the_end, reverse=True):
            advance(data_dir, DAYS - days_left - elapsed)
            elapsed = DAYS - days_left
            for action in people.before_the_end[days_left]:
                action()
        advance(data_dir, DAYS - elapsed)
        people.catch_up()
        units_per_dollar = rates_on(engine, dt.datetime.fromtimestamp(firm.end, dt.timezone.utc).date())
        engine.dispose()

        warehouse = Warehouse(data_dir, root / "warehouse.duckdb", server)
        warehouse.ingest()
        warehouse.build_models()
        for object_type in ("companies", "deals"):
            result = push(object_type, settings=Settings.from_env(warehouse.env()))
            assert result.status == "success", result
        people.after_the_push()
        warehouse.ingest()
        warehouse.build_models()
        columns = ("exception_type", "source_system", "source_record_id", "customer_id", "owner_system",
                   "amount_at_risk", "amount_at_risk_reporting", "currency")
        exceptions = [dict(zip(columns, row)) for row in warehouse.query(
            f"select {', '.join(columns)} from reconciliation.reconciliation_exceptions")]
        records = vendor_truth.VendorRecords(settings, data_dir)
        as_of = dt.date.fromisoformat(warehouse.as_of[:10])
        clients = {c.hubspot_company_ids[0]: c for c in vendor_truth.clients(data_dir)}
        billed = [clients[e.client.company_id] for e in expected.values() if e.client]
        truth = vendor_truth.expected_company_values(records, billed, as_of)
        yield Run(expected, exceptions, crm_values(settings, "companies"), truth, units_per_dollar, warehouse)


def rates_on(erp: Engine, day: dt.date) -> dict[str, Decimal]:
    """Currency -> units per US dollar on `day` by the ERP's own table."""
    with erp.connect() as con:
        rates = ErpRates.read(con)
    return {currency: rates.per_dollar(currency, day) for currency in ("USD", "GBP", "EUR")}


def names_in(module: str) -> list[str]:
    """The scenarios a test module registered, for its parametrised test."""
    return [name for name, fn in SCENARIOS.items() if fn.__module__ == module]

