"""The reconciliation report: one self-contained HTML page for finance operations, written from
the dbt marts after a build, with no Dagster import (the asset that calls it lives beside it).

What the page shows, read from the warehouse:

| section | from | what |
|---|---|---|
| `#headline` | `reconciliation.reconciliation_exceptions` | open exceptions, amount at risk in the reporting currency, as-of moment |
| `#by-type`, `#by-owner`, `#by-age` | the same | counts and amounts at risk, largest first; age = days since first detected (`first_detected_at`, carried from run to run by `reconciliation_exception_history`) at the as-of moment |
| `#top-exceptions` | the same, with `core.customers` | the `top_n` largest exceptions, the order finance works them in |
| `#trends` | `reporting.reconciliation_report_runs` | open exceptions and amount at risk per report run, and per type |
| `#lifecycle` | `reconciliation.reconciliation_exception_history` | exceptions opened and resolved per detection run |
| `#sla` | `metrics.project_activations`, `metrics.invoice_readiness`, `metrics.receivable_balances` | activation time and invoice readiness latency against their targets, AR aging now |

`reconciliation_exception_history` keeps one row per exception (first, last and resolution
moment), not counts per run, and dbt's as-of moments need not follow the report's runs, so the
trends come from a small table of the report's own: `reporting.reconciliation_report_runs`, one
row per report run and exception type of the catalogue (zero rows included, so every run has a
point), appended by `record_run`.

The page loads nothing: inline CSS, charts drawn here as inline SVG, no script, and a
Content-Security-Policy that forbids fetching anything should a value ever look like a URL.
Every value from the warehouse is HTML-escaped.

Usage (the asset calls this after `dbt build`; it writes the history, so it takes the writers'
lock)::

    result = write_report(warehouse_path(), Path("data/reports"))
    result.path, result.exceptions, result.amount_at_risk, result.markdown
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

import duckdb
import yaml

from ingestion.warehouse import WriterLock, open_read_write

DBT_PROJECT_FILE = Path(__file__).resolve().parents[1] / "dbt_project" / "dbt_project.yml"
REPORT_FILE = "reconciliation_report.html"
ARCHIVE_DIR = "archive"
HISTORY_SCHEMA = "reporting"
HISTORY_TABLE = f"{HISTORY_SCHEMA}.reconciliation_report_runs"
TOP_N = 50
TREND_RUNS = 30
LIFECYCLE_RUNS = 12

# The exception catalogue (dbt_project/DECISIONLOG.md, "The exceptions"), in its order: what each type catches.
EXCEPTION_TYPES: dict[str, str] = {
    "customer_missing_in_erp": "a won CRM client has no ERP customer master",
    "customer_attribute_mismatch": "systems disagree on a customer field its owner holds",
    "duplicate_customer": "one client held as several records of one system",
    "contract_value_mismatch": "sold amount (CRM deal) and ERP contract disagree",
    "won_deal_without_project": "a won deal has no PSA project after the activation SLA",
    "approved_time_unbilled": "approved billable time past its billing cycle is not invoiced",
    "invoice_missing_in_erp": "a finalised billing invoice has no ERP AR invoice",
    "invoice_amount_mismatch": "billing and ERP disagree on an invoice's amount",
    "invoice_status_mismatch": "billing and ERP disagree on an invoice's status",
    "payment_unapplied": "a payment collected in billing is not applied in the ERP",
    "unmatched_record": "a record identity resolution could not tie to a customer",
    "crm_financial_status_stale": "the CRM shows financial figures that no longer hold",
}

# Who works an exception, by the system that must change (`owner_system`).
OWNER_TEAMS: dict[str, str] = {
    "hubspot": "Sales operations (CRM)",
    "erp": "Finance / accounting (ERP)",
    "harvest": "Delivery / PMO (PSA)",
    "stripe": "Billing",
    "concord": "Data engineering (reverse ETL)",
}

AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7 days", 0, 7), ("8-30 days", 8, 30), ("31-90 days", 31, 90), ("over 90 days", 91, None))
SEVERITIES = ("high", "medium", "low")
AR_BUCKETS = {"current": "not yet due", "1_30": "1-30 days", "31_60": "31-60 days", "61_90": "61-90 days",
              "over_90": "over 90 days"}


# --- what the report holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """One line of a breakdown: exceptions sharing a type, owner, age bucket or severity."""

    key: str
    count: int
    amount_at_risk: Decimal
    owners: tuple[str, ...] = ()  # for a type: the owner systems among its exceptions
    high: int = 0  # of which `high` severity


@dataclass(frozen=True)
class ExceptionItem:
    """One exception as the top list shows it (amounts in `currency` and the reporting currency)."""

    exception_id: str
    exception_type: str
    severity: str
    domain: str
    owner_system: str
    customer_id: str | None
    customer_name: str | None
    source_system: str
    source_record_id: str
    amount_at_risk: Decimal
    currency: str | None
    amount_at_risk_reporting: Decimal | None
    first_detected_at: dt.datetime
    age_days: int
    due_at: dt.datetime | None  # the SLA due moment the details name, if any
    detail: str


@dataclass(frozen=True)
class RunPoint:
    """One report run in the history: exceptions and amount at risk per type."""

    generated_at: dt.datetime
    as_of: dt.datetime | None
    by_type: dict[str, tuple[int, Decimal]]

    @property
    def exceptions(self) -> int:
        return sum(n for n, _ in self.by_type.values())

    @property
    def amount_at_risk(self) -> Decimal:
        return sum((a for _, a in self.by_type.values()), Decimal(0))


@dataclass(frozen=True)
class LifecycleRow:
    """Exceptions opened and resolved at one dbt detection moment (as-of)."""

    detected_at: dt.datetime
    opened: int
    resolved: int


@dataclass(frozen=True)
class SlaBin:
    """A histogram bar: values in (lower, upper] days (the first bar includes 0; upper None: open)."""

    label: str
    lower: float
    upper: float | None
    measured: int  # completed: activated deals / invoiced time entries
    waiting: int  # still waiting, by days waited so far
    within_target: bool


@dataclass(frozen=True)
class SlaChart:
    """The distribution of one SLA measure against its target."""

    key: str  # html id suffix: "activation", "invoice-readiness"
    title: str
    unit_label: str  # "deals", "time entries"
    measure: str  # what is measured, one sentence
    target_days: float
    measured: int
    within_target: int
    waiting: int
    waiting_past_target: int
    median_days: float | None
    p90_days: float | None
    bins: tuple[SlaBin, ...]

    @property
    def share_within_target(self) -> float | None:
        return self.within_target / self.measured if self.measured else None


@dataclass(frozen=True)
class Report:
    """Everything the page shows; `render_html` and `markdown_summary` only format it."""

    generated_at: dt.datetime
    as_of: dt.datetime | None  # the moment dbt judged the data at (`detected_at`)
    reporting_currency: str
    exceptions: int
    amount_at_risk: Decimal  # sum of `amount_at_risk_reporting`
    without_reporting_amount: int  # exceptions whose amount could not be converted
    customers_affected: int
    by_type: tuple[Group, ...]  # largest amount at risk first
    by_owner: tuple[Group, ...]
    by_age: tuple[Group, ...]  # in AGE_BUCKETS order
    by_severity: tuple[Group, ...]
    top: tuple[ExceptionItem, ...]  # largest amount at risk first
    top_n: int
    runs: tuple[RunPoint, ...]  # recorded runs, oldest first, this one last
    lifecycle: tuple[LifecycleRow, ...]  # oldest first
    sla: tuple[SlaChart, ...]
    receivables: tuple[Group, ...]  # open AR at the as-of moment by aging bucket
    receivables_measured_at: dt.datetime | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ReportResult:
    """What `write_report` wrote, with headline figures for asset metadata (plain JSON types)."""

    path: Path  # the latest page, `<out_dir>/reconciliation_report.html`
    archive_path: Path  # this run's copy, `<out_dir>/archive/<timestamp>.html`
    exceptions: int
    amount_at_risk: float
    reporting_currency: str
    by_type: dict[str, dict[str, float | int]]  # type -> {"count", "amount_at_risk"}, largest first
    markdown: str  # `markdown_summary(report)`
    report: Report


# --- reading the warehouse ----------------------------------------------------------------------


def project_vars(project_file: Path = DBT_PROJECT_FILE) -> dict[str, Any]:
    """The dbt project's `vars` (SLA targets, reporting currency); empty when unreadable."""
    try:
        return dict(yaml.safe_load(project_file.read_text()).get("vars") or {})
    except (OSError, yaml.YAMLError, AttributeError):
        return {}


def build_report(con: duckdb.DuckDBPyConnection, *, generated_at: dt.datetime, top_n: int = TOP_N,
                 activation_sla_days: float | None = None, readiness_sla_days: float | None = None,
                 reporting_currency: str | None = None) -> Report:
    """Read the reconciliation and metrics marts into a `Report`; writes nothing.

    Args:
        con: a connection to the warehouse after `dbt build` (read-only is enough).
        generated_at: when the report is made (its run in the trend history).
        top_n: how many individual exceptions the page lists.
        activation_sla_days: the project activation target; default `activation_sla_days` of
            the dbt project (14).
        readiness_sla_days: the invoice readiness target; default `tm_billing_sla_days` (16):
            a month's time is ready when the month ends and is due on invoices that many days on.
        reporting_currency: default the dbt project's `reporting_currency` (USD).
    """
    variables = project_vars()
    currency = reporting_currency or str(variables.get("reporting_currency", "USD"))
    activation_target = float(activation_sla_days if activation_sla_days is not None
                              else variables.get("activation_sla_days", 14))
    readiness_target = float(readiness_sla_days if readiness_sla_days is not None
                             else variables.get("tm_billing_sla_days", 16))
    generated_at = _utc(generated_at)
    exc = "reconciliation.reconciliation_exceptions"
    notes: list[str] = []

    exceptions, amount, unconverted, customers, as_of = con.execute(f"""
        SELECT count(*), coalesce(sum(amount_at_risk_reporting), 0),
               count(*) FILTER (WHERE amount_at_risk_reporting IS NULL), count(DISTINCT customer_id),
               max(detected_at)
        FROM {exc}""").fetchone()
    if unconverted:
        notes.append(f"{unconverted} exception(s) have no amount in {currency} (no FX rate) and are "
                     "left out of the amounts at risk.")

    by_type = tuple(Group(t, n, a, tuple(owners), high) for t, n, a, owners, high in con.execute(f"""
        SELECT exception_type, count(*), coalesce(sum(amount_at_risk_reporting), 0),
               list(DISTINCT owner_system ORDER BY owner_system), count(*) FILTER (WHERE severity = 'high')
        FROM {exc} GROUP BY exception_type
        ORDER BY 3 DESC, 2 DESC, 1""").fetchall())
    by_owner = tuple(Group(o, n, a, high=high) for o, n, a, high in con.execute(f"""
        SELECT owner_system, count(*), coalesce(sum(amount_at_risk_reporting), 0),
               count(*) FILTER (WHERE severity = 'high')
        FROM {exc} GROUP BY owner_system ORDER BY 3 DESC, 2 DESC, 1""").fetchall())
    age_counts = {b: (n, a, high) for b, n, a, high in con.execute(f"""
        SELECT {_age_bucket_sql()} AS bucket, count(*), coalesce(sum(amount_at_risk_reporting), 0),
               count(*) FILTER (WHERE severity = 'high')
        FROM {exc} GROUP BY bucket""").fetchall()}
    by_age = tuple(Group(label, *age_counts.get(label, (0, Decimal(0), 0))) for label, _, _ in AGE_BUCKETS)
    severity_counts = {s: (n, a) for s, n, a in con.execute(f"""
        SELECT severity, count(*), coalesce(sum(amount_at_risk_reporting), 0) FROM {exc}
        GROUP BY severity""").fetchall()}
    by_severity = tuple(Group(s, *severity_counts.get(s, (0, Decimal(0)))) for s in SEVERITIES)

    top = tuple(_exception_item(row) for row in con.execute(f"""
        SELECT e.exception_id, e.exception_type, e.severity, e.domain, e.owner_system, e.customer_id,
               c.customer_name, e.source_system, e.source_record_id, e.amount_at_risk, e.currency,
               e.amount_at_risk_reporting, e.first_detected_at, {_age_days_sql('e')},
               CAST(e.details AS VARCHAR)
        FROM {exc} AS e
        LEFT JOIN core.customers AS c ON c.customer_id = e.customer_id
        ORDER BY e.amount_at_risk_reporting DESC NULLS LAST, e.amount_at_risk DESC, e.first_detected_at,
                 e.exception_id
        LIMIT ?""", [top_n]).fetchall())

    receivables_measured_at, receivables = _receivables(con)
    this_run = RunPoint(generated_at, as_of, {g.key: (g.count, g.amount_at_risk) for g in by_type})
    runs = (*_recorded_runs(con, before=generated_at), this_run)

    return Report(
        generated_at=generated_at, as_of=as_of, reporting_currency=currency, exceptions=exceptions,
        amount_at_risk=Decimal(amount), without_reporting_amount=unconverted, customers_affected=customers,
        by_type=by_type, by_owner=by_owner, by_age=by_age, by_severity=by_severity, top=top, top_n=top_n,
        runs=runs, lifecycle=_lifecycle(con),
        sla=(_activation_chart(con, activation_target), _readiness_chart(con, readiness_target)),
        receivables=receivables, receivables_measured_at=receivables_measured_at, notes=tuple(notes),
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    """A naive UTC datetime (the warehouse's timestamps are naive UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _age_days_sql(alias: str | None = None) -> str:
    p = f"{alias}." if alias else ""
    return (f"CAST(floor(greatest(epoch({p}detected_at) - epoch({p}first_detected_at), 0) / 86400) "
            f"AS INTEGER)")


def _age_bucket_sql() -> str:
    cases = " ".join(f"WHEN {_age_days_sql()} <= {upper} THEN '{label}'"
                     for label, _, upper in AGE_BUCKETS if upper is not None)
    return f"CASE {cases} ELSE '{AGE_BUCKETS[-1][0]}' END"


def _exception_item(row: tuple) -> ExceptionItem:
    (exception_id, exception_type, severity, domain, owner, customer_id, customer_name, source_system,
     source_record_id, amount, currency, amount_reporting, first_detected_at, age_days, details) = row
    parsed = _parse_details(details)
    if not customer_name and isinstance(parsed, dict) and parsed.get("record_name"):
        customer_name = str(parsed["record_name"])
    return ExceptionItem(
        exception_id=exception_id, exception_type=exception_type, severity=severity, domain=domain,
        owner_system=owner, customer_id=customer_id, customer_name=customer_name, source_system=source_system,
        source_record_id=source_record_id, amount_at_risk=amount, currency=currency,
        amount_at_risk_reporting=amount_reporting, first_detected_at=first_detected_at, age_days=age_days,
        due_at=_due_at(parsed), detail=describe_details(parsed))


def _parse_details(details: str | None) -> Any:
    if not details:
        return None
    try:
        return json.loads(details)
    except ValueError:
        return details


def _due_at(details: Any) -> dt.datetime | None:
    if not isinstance(details, dict):
        return None
    for key, value in details.items():
        if key.endswith("_due_at") and isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                return None
    return None


def describe_details(details: Any) -> str:
    """The details JSON as one readable line: `key: value; ...`, mismatches as `CRM x -> Concord y`."""
    if details is None:
        return ""
    if isinstance(details, dict):
        if {"property", "crm", "concord"} <= details.keys():
            crm, concord = (("none" if v is None else _plain(v)) for v in (details["crm"], details["concord"]))
            return f"{details['property']} ({crm} \u2192 {concord})"
        parts = []
        for key, value in details.items():
            if key == "differing_properties" and isinstance(value, list):
                noun = "property differs" if len(value) == 1 else "properties differ"
                parts.append(f"{len(value)} {noun} (CRM \u2192 Concord): "
                             + ", ".join(describe_details(v) for v in value))
                continue
            if isinstance(value, list):
                value = ", ".join(describe_details(v) for v in value)
            elif isinstance(value, dict):
                value = describe_details(value)
            else:
                value = _plain(value)
            parts.append(f"{key.replace('_', ' ')}: {value}")
        return "; ".join(parts)
    if isinstance(details, list):
        return ", ".join(describe_details(v) for v in details)
    return _plain(details)


def _plain(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                            "AND table_name = ?", [schema, name]).fetchone()[0])


def _recorded_runs(con: duckdb.DuckDBPyConnection, *, before: dt.datetime,
                   limit: int = TREND_RUNS - 1) -> list[RunPoint]:
    if not _table_exists(con, HISTORY_TABLE):
        return []
    rows = con.execute(f"""
        WITH runs AS (
            SELECT DISTINCT generated_at FROM {HISTORY_TABLE} WHERE generated_at < ?
            ORDER BY generated_at DESC LIMIT ?)
        SELECT h.generated_at, h.as_of, h.exception_type, h.exceptions, h.amount_at_risk
        FROM {HISTORY_TABLE} AS h JOIN runs USING (generated_at)
        ORDER BY h.generated_at, h.exception_type""", [before, limit]).fetchall()
    points: dict[dt.datetime, RunPoint] = {}
    for generated_at, as_of, exception_type, n, amount in rows:
        point = points.setdefault(generated_at, RunPoint(generated_at, as_of, {}))
        if n:
            point.by_type[exception_type] = (n, amount)
    return list(points.values())


def _lifecycle(con: duckdb.DuckDBPyConnection, limit: int = LIFECYCLE_RUNS) -> tuple[LifecycleRow, ...]:
    history = "reconciliation.reconciliation_exception_history"
    if not _table_exists(con, history):
        return ()
    rows = con.execute(f"""
        WITH events AS (
            SELECT first_detected_at AS moment, 1 AS opened, 0 AS resolved FROM {history}
            UNION ALL
            SELECT resolved_at, 0, 1 FROM {history} WHERE resolved_at IS NOT NULL)
        SELECT moment, sum(opened), sum(resolved) FROM events GROUP BY moment ORDER BY moment DESC LIMIT ?""",
                       [limit]).fetchall()
    return tuple(LifecycleRow(at, int(o), int(r)) for at, o, r in reversed(rows))


def _bin_edges(target: float) -> list[float]:
    """Bar edges around a target: quarters up to it, then 1.5x, 2x, 4x and 8x (whole days)."""
    factors = (0, 0.25, 0.5, 0.75, 1, 1.5, 2, 4, 8)
    return sorted({round(target * f) for f in factors} | {target})


def _histogram(measured: Sequence[tuple[float, int]], waiting: Sequence[tuple[float, int]],
               target: float) -> tuple[SlaBin, ...]:
    edges = _bin_edges(target)
    bounds = [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)] + [(edges[-1], None)]

    def index(value: float) -> int:
        for i, (_, upper) in enumerate(bounds):
            if upper is None or value <= upper:
                return i
        return len(bounds) - 1

    done, wait = [0] * len(bounds), [0] * len(bounds)
    for value, n in measured:
        done[index(float(value))] += n
    for value, n in waiting:
        wait[index(float(value))] += n
    return tuple(SlaBin(_fmt_days(lo) + "\u2013" + _fmt_days(hi) if hi is not None else f">{_fmt_days(lo)}",
                        lo, hi, done[i], wait[i], hi is not None and hi <= target)
                 for i, (lo, hi) in enumerate(bounds))


def _quantile(values: Sequence[tuple[float, int]], q: float) -> float | None:
    """The q-quantile (nearest rank) of value-count pairs."""
    total = sum(n for _, n in values)
    if not total:
        return None
    rank, seen = max(1, math.ceil(q * total)), 0
    for value, n in sorted(values):
        seen += n
        if seen >= rank:
            return float(value)
    return float(max(v for v, _ in values))


def _activation_chart(con: duckdb.DuckDBPyConnection, target: float) -> SlaChart:
    rel = "metrics.project_activations"
    measured = con.execute(f"SELECT activation_days, count(*) FROM {rel} WHERE is_activated "
                           "AND activation_days IS NOT NULL GROUP BY 1").fetchall()
    waiting = con.execute(f"SELECT awaiting_days, count(*) FROM {rel} WHERE NOT is_activated "
                          "AND awaiting_days IS NOT NULL GROUP BY 1").fetchall()
    within = con.execute(f"SELECT count(*) FROM {rel} WHERE is_activated AND is_within_sla").fetchone()[0]
    return _chart_of(
        measured, waiting, target, within_target=within,
        key="activation", title="Project activation time", unit_label="deals",
        measure="Days from a deal's close (closed-won in HubSpot) to the creation of its Harvest project.")


def _readiness_chart(con: duckdb.DuckDBPyConnection, target: float) -> SlaChart:
    rel = "metrics.invoice_readiness"
    measured = con.execute(f"SELECT readiness_latency_days, count(*) FROM {rel} WHERE is_invoiced "
                           "AND readiness_latency_days IS NOT NULL GROUP BY 1").fetchall()
    waiting = con.execute(f"SELECT waiting_days, count(*) FROM {rel} WHERE NOT is_invoiced AND is_ready "
                          "AND waiting_days IS NOT NULL GROUP BY 1").fetchall()
    return _chart_of(
        measured, waiting, target, within_target=sum(n for v, n in measured if float(v) <= target),
        key="invoice-readiness", title="Invoice readiness latency", unit_label="time entries",
        measure=("Days from approved billable time being ready to invoice (its month ended and it was "
                 "approved) to the invoice that billed it."))


def _chart_of(measured: Sequence[tuple[float, int]], waiting: Sequence[tuple[float, int]], target: float, *,
             within_target: int, **labels: str) -> SlaChart:
    """An SLA's chart from (days, count) pairs of the items measured and the items still waiting."""
    return SlaChart(
        **labels, target_days=target, measured=sum(n for _, n in measured), within_target=within_target,
        waiting=sum(n for _, n in waiting), waiting_past_target=sum(n for v, n in waiting if float(v) > target),
        median_days=_quantile(measured, 0.5), p90_days=_quantile(measured, 0.9),
        bins=_histogram(measured, waiting, target))


def sla_charts(con: duckdb.DuckDBPyConnection, *, activation_sla_days: float | None = None,
               readiness_sla_days: float | None = None) -> tuple[SlaChart, SlaChart]:
    """Project activation and invoice readiness against their targets, as the page's `#sla`
    shows them (the SLA checks judge these same figures); targets default as in `build_report`."""
    variables = project_vars()
    activation = float(activation_sla_days if activation_sla_days is not None
                       else variables.get("activation_sla_days", 14))
    readiness = float(readiness_sla_days if readiness_sla_days is not None
                      else variables.get("tm_billing_sla_days", 16))
    return _activation_chart(con, activation), _readiness_chart(con, readiness)


def _receivables(con: duckdb.DuckDBPyConnection) -> tuple[dt.datetime | None, tuple[Group, ...]]:
    rel = "metrics.receivable_balances"
    if not _table_exists(con, rel):
        return None, ()
    rows = con.execute(f"""
        SELECT measured_at, aging_bucket, count(*), coalesce(sum(open_amount_reporting), 0) FROM {rel}
        WHERE measured_at = (SELECT max(measured_at) FROM {rel}) GROUP BY ALL""").fetchall()
    measured_at = rows[0][0] if rows else None
    found = {bucket: (n, amount) for _, bucket, n, amount in rows}
    return measured_at, tuple(Group(b, *found.get(b, (0, Decimal(0)))) for b in AR_BUCKETS)


# --- the trend history --------------------------------------------------------------------------


def record_run(con: duckdb.DuckDBPyConnection, report: Report) -> None:
    """Append this report's counts to `reporting.reconciliation_report_runs` (one row per type of
    the catalogue and any other type seen; a second record of the same run replaces the first).
    The caller holds the writers' lock."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {HISTORY_SCHEMA}")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
        generated_at TIMESTAMP NOT NULL,
        as_of TIMESTAMP,
        exception_type VARCHAR NOT NULL,
        exceptions INTEGER NOT NULL,
        amount_at_risk DECIMAL(18, 2) NOT NULL,
        reporting_currency VARCHAR NOT NULL,
        PRIMARY KEY (generated_at, exception_type))""")
    counts = {g.key: g for g in report.by_type}
    types = list(EXCEPTION_TYPES) + sorted(set(counts) - set(EXCEPTION_TYPES))
    rows = [(report.generated_at, report.as_of, t, counts[t].count if t in counts else 0,
             counts[t].amount_at_risk if t in counts else Decimal(0), report.reporting_currency) for t in types]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"DELETE FROM {HISTORY_TABLE} WHERE generated_at = ?", [report.generated_at])
        con.executemany(f"INSERT INTO {HISTORY_TABLE} VALUES (?, ?, ?, ?, ?, ?)", rows)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def write_report(warehouse: Path, out_dir: Path, *, generated_at: dt.datetime | None = None,
                 top_n: int = TOP_N, lock_timeout_s: float = 3600.0) -> ReportResult:
    """Build the report from the warehouse, record its run in the trend history, and write
    `<out_dir>/reconciliation_report.html` and a copy `<out_dir>/archive/<YYYYmmddTHHMMSSZ>.html`.

    Holds the warehouse's writers' lock (it appends to `reporting.reconciliation_report_runs`)
    only while it reads and records; the page is written after.

    Args:
        warehouse: the DuckDB file, after `dbt build`.
        out_dir: where the pages go (created if missing).
        generated_at: the run's moment; default now (UTC).
        top_n: how many individual exceptions the page lists.
        lock_timeout_s: how long to wait for another writer.
    """
    generated_at = _utc(generated_at or dt.datetime.now(dt.timezone.utc))
    with WriterLock(warehouse, timeout_s=lock_timeout_s):
        con = open_read_write(warehouse)
        try:
            report = build_report(con, generated_at=generated_at, top_n=top_n)
            record_run(con, report)
        finally:
            con.close()
    page = render_html(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / ARCHIVE_DIR / f"{generated_at:%Y%m%dT%H%M%SZ}.html"
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_text(page, encoding="utf-8")
    latest = out_dir / REPORT_FILE
    temporary = latest.with_suffix(".html.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(latest)  # a reader never sees half a page
    return ReportResult(
        path=latest, archive_path=archive, exceptions=report.exceptions,
        amount_at_risk=float(report.amount_at_risk), reporting_currency=report.reporting_currency,
        by_type={g.key: {"count": g.count, "amount_at_risk": float(g.amount_at_risk)} for g in report.by_type},
        markdown=markdown_summary(report), report=report)


# --- formatting ---------------------------------------------------------------------------------


def _money(amount: Decimal | float | None, currency: str | None = None, *, cents: bool = True) -> str:
    if amount is None:
        return "\u2013"
    text = f"{amount:,.2f}" if cents else f"{amount:,.0f}"
    return f"{text} {currency}" if currency else text


def _short_money(amount: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(amount) >= size:
            return f"{amount / size:.3g}{suffix}"
    return f"{amount:.0f}" if amount == int(amount) else f"{amount:.3g}"


def _fmt_days(days: float | None) -> str:
    if days is None:
        return "\u2013"
    return f"{days:.0f}" if float(days) == int(days) else f"{days:.1f}"


def _moment(moment: dt.datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "\u2013"


def _pct(share: float | None) -> str:
    return "\u2013" if share is None else f"{share * 100:.0f}%"


def markdown_summary(report: Report) -> str:
    """Exceptions by type as a markdown table (count, amount at risk), largest first, with a total."""
    cur = report.reporting_currency
    lines = [f"| exception type | count | amount at risk ({cur}) |", "|---|---:|---:|"]
    for g in report.by_type:
        lines.append(f"| {g.key.replace('|', '/')} | {g.count} | {_money(g.amount_at_risk)} |")
    lines.append(f"| **total** | **{report.exceptions}** | **{_money(report.amount_at_risk)}** |")
    return "\n".join(lines)


# --- the page -----------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


CSS = """
:root { --ink:#1f2430; --muted:#5f6b7a; --line:#dde2ea; --panel:#f6f8fb; --accent:#2f5d9f;
        --ok:#2e7d4f; --bad:#c0392b; --wait:#e08e0b; --bar:#7a9cc6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif;
       color: var(--ink); background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 48px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: var(--muted); }
section { margin-top: 32px; }
h2 { font-size: 18px; margin: 0 0 4px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 4px; }
p.lead { color: var(--muted); margin: 4px 0 12px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: 650; margin-top: 2px; white-space: nowrap; }
.card .sub { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em;
     background: var(--panel); }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.share { width: 170px; white-space: nowrap; }
.bar { display: inline-block; height: 10px; background: var(--bar); border-radius: 2px; vertical-align: middle; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12px; }
.type { font-weight: 600; }
.muted { color: var(--muted); }
.detail { color: var(--muted); font-size: 12px; max-width: 420px; overflow-wrap: anywhere; }
.sev { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; font-weight: 600; }
.sev-high { background: #fbe3e0; color: var(--bad); }
.sev-medium { background: #fdf0d8; color: #9a5b00; }
.sev-low { background: #e8edf3; color: var(--muted); }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 20px; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px 12px; }
.chart svg { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, "DejaVu Sans", Arial, sans-serif; fill: var(--muted); }
svg .axis { stroke: #9aa5b4; stroke-width: 1; }
svg .grid { stroke: #edf0f4; stroke-width: 1; }
svg .within { fill: var(--ok); }
svg .breach { fill: var(--bad); }
svg .waiting { fill: var(--wait); }
svg .neutral { fill: var(--bar); }
svg .line { fill: none; stroke: var(--accent); stroke-width: 2; }
svg .dot { fill: var(--accent); }
svg .target { stroke: var(--ink); stroke-width: 1.5; stroke-dasharray: 5 4; }
svg text.value { fill: var(--ink); font-weight: 600; }
svg text.target-label { fill: var(--ink); font-weight: 600; }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin: 4px 0; flex-wrap: wrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px;
          vertical-align: -1px; }
.kpis { display: grid; grid-template-columns: 1fr 1fr; gap: 2px 18px; margin: 6px 0; font-size: 13px; }
.kpis b { font-size: 15px; }
.up { color: var(--bad); } .down { color: var(--ok); }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line);
         padding-top: 8px; }
"""


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG; no script, nothing fetched)."""
    cur = report.reporting_currency
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Reconciliation report \u2013 {esc(_moment(report.as_of or report.generated_at))}</title>",
        f"<style>{CSS}</style></head><body><main>",
        "<header><h1>Reconciliation report</h1>",
        f"<p>Exceptions between CRM, ERP, PSA and billing as of <b>{esc(_moment(report.as_of))}</b> "
        f"&middot; generated {esc(_moment(report.generated_at))} &middot; amounts in {esc(cur)}</p></header>",
        _headline(report),
        _by_type(report),
        _by_owner(report),
        _by_age(report),
        _top(report),
        _trends(report),
        _lifecycle_section(report),
        _sla_section(report),
        _footer(report),
        "</main></body></html>",
    ]
    return "\n".join(parts)


def _card(label: str, value: str, sub: str = "", ident: str = "") -> str:
    attr = f' id="{esc(ident)}"' if ident else ""
    return (f'<div class="card"{attr}><div class="label">{esc(label)}</div><div class="value">{esc(value)}</div>'
            f'<div class="sub">{esc(sub)}</div></div>')


def _headline(report: Report) -> str:
    cur = report.reporting_currency
    high = next((g for g in report.by_severity if g.key == "high"), Group("high", 0, Decimal(0)))
    oldest = next((g for g in reversed(report.by_age) if g.count), None)
    previous = report.runs[-2] if len(report.runs) > 1 else None
    change = ""
    if previous is not None:
        delta = report.exceptions - previous.exceptions
        change = f"{delta:+d} since the previous report"
    cards = [
        _card("Open exceptions", f"{report.exceptions:,}", change, "headline-exceptions"),
        _card(f"Amount at risk ({cur})", _money(report.amount_at_risk, cents=False),
              f"{_money(report.amount_at_risk)} {cur}", "headline-amount"),
        _card("High severity", f"{high.count:,}", f"{_money(high.amount_at_risk, cur, cents=False)} at risk",
              "headline-high"),
        _card("Customers affected", f"{report.customers_affected:,}", "with at least one exception",
              "headline-customers"),
        _card("As of", f"{report.as_of:%Y-%m-%d}" if report.as_of else "\u2013",
              f"{report.as_of:%H:%M} UTC" if report.as_of else "no exceptions detected", "headline-as-of"),
    ]
    notes = "".join(f'<p class="lead">{esc(n)}</p>' for n in report.notes)
    oldest_note = (f'<p class="lead">Oldest exceptions: {esc(oldest.key)} since first detected.</p>'
                   if oldest else "")
    return (f'<section id="headline"><h2>Headline</h2><div class="cards">{"".join(cards)}</div>'
            f"{oldest_note}{notes}</section>")


def _share_bar(amount: Decimal, total: Decimal) -> str:
    share = float(amount / total) if total else 0.0
    return (f'<span class="bar" style="width:{share * 120:.1f}px"></span> '
            f'<span class="muted">{_pct(share) if total else ""}</span>')


def _by_type(report: Report) -> str:
    cur = report.reporting_currency
    rows = []
    for g in report.by_type:
        owners = ", ".join(g.owners)
        teams = "; ".join(OWNER_TEAMS.get(o, o) for o in g.owners)
        rows.append(
            f'<tr data-exception-type="{esc(g.key)}"><td><span class="type">{esc(g.key)}</span><br>'
            f'<span class="muted">{esc(EXCEPTION_TYPES.get(g.key, ""))}</span></td>'
            f'<td class="num count">{g.count:,}</td><td class="num high">{g.high:,}</td>'
            f'<td class="num amount">{esc(_money(g.amount_at_risk))}</td>'
            f'<td class="share">{_share_bar(g.amount_at_risk, report.amount_at_risk)}</td>'
            f'<td class="owner"><code>{esc(owners)}</code><br><span class="muted">{esc(teams)}</span></td></tr>')
    if not rows:
        rows.append('<tr><td colspan="6" class="muted">No exceptions: the four systems agree.</td></tr>')
    return (
        '<section id="by-type"><h2>Exceptions by type</h2>'
        f'<p class="lead">Largest amount at risk first. The owner is the system that must change '
        f'(and the team that works it).</p><table><thead><tr><th>type</th><th class="num">count</th>'
        f'<th class="num">high</th><th class="num">at risk ({esc(cur)})</th><th>share</th><th>owner</th>'
        f'</tr></thead><tbody>{"".join(rows)}</tbody>'
        f'<tfoot><tr><th>total</th><th class="num">{report.exceptions:,}</th><th></th>'
        f'<th class="num">{esc(_money(report.amount_at_risk))}</th><th></th><th></th></tr></tfoot>'
        "</table></section>")


def _by_owner(report: Report) -> str:
    cur = report.reporting_currency
    rows = "".join(
        f'<tr data-owner="{esc(g.key)}"><td><code>{esc(g.key)}</code></td><td>{esc(OWNER_TEAMS.get(g.key, ""))}</td>'
        f'<td class="num count">{g.count:,}</td><td class="num">{g.high:,}</td>'
        f'<td class="num amount">{esc(_money(g.amount_at_risk))}</td>'
        f'<td class="share">{_share_bar(g.amount_at_risk, report.amount_at_risk)}</td></tr>'
        for g in report.by_owner)
    return (
        '<section id="by-owner"><h2>Exceptions by owner</h2><table><thead><tr><th>owner system</th>'
        f'<th>team</th><th class="num">count</th><th class="num">high</th><th class="num">at risk ({esc(cur)})</th>'
        f'<th>share</th></tr></thead><tbody>{rows}</tbody></table></section>')


def _by_age(report: Report) -> str:
    cur = report.reporting_currency
    rows = "".join(
        f'<tr data-age="{esc(g.key)}"><td>{esc(g.key)}</td><td class="num count">{g.count:,}</td>'
        f'<td class="num">{g.high:,}</td><td class="num amount">{esc(_money(g.amount_at_risk))}</td>'
        f'<td class="share">{_share_bar(g.amount_at_risk, report.amount_at_risk)}</td></tr>'
        for g in report.by_age)
    chart = _svg_bars([(g.key, float(g.count), "neutral", f"{g.key}: {g.count} exceptions") for g in report.by_age],
                      title="Open exceptions by age", y_label="exceptions", width=460, height=200)
    return (
        '<section id="by-age"><h2>Exceptions by age</h2>'
        '<p class="lead">Days since a run first detected the problem (a problem that was fixed and came back '
        'counts from its return).</p><div class="grid2"><div><table><thead><tr><th>age</th>'
        f'<th class="num">count</th><th class="num">high</th><th class="num">at risk ({esc(cur)})</th>'
        f'<th>share</th></tr></thead><tbody>{rows}</tbody></table></div>'
        f'<div class="chart">{chart}</div></div></section>')


def _top(report: Report) -> str:
    cur = report.reporting_currency
    rows = []
    for rank, item in enumerate(report.top, 1):
        original = ""
        if item.currency and item.currency != cur:
            original = f'<br><span class="muted">{esc(_money(item.amount_at_risk, item.currency))}</span>'
        customer = esc(item.customer_name) if item.customer_name else '<span class="muted">(no customer)</span>'
        due = f'<br><span class="muted">due {esc(f"{item.due_at:%Y-%m-%d}")}</span>' if item.due_at else ""
        detail = item.detail if len(item.detail) <= 160 else item.detail[:157] + "\u2026"
        rows.append(
            f'<tr class="exception" data-exception-id="{esc(item.exception_id)}" '
            f'data-exception-type="{esc(item.exception_type)}">'
            f'<td class="num">{rank}</td>'
            f'<td><span class="type">{esc(item.exception_type)}</span><br>'
            f'<span class="sev sev-{esc(item.severity)}">{esc(item.severity)}</span></td>'
            f'<td>{customer}<br><span class="mono muted">{esc(item.source_system)}:{esc(item.source_record_id)}'
            f'</span></td><td><code>{esc(item.owner_system)}</code></td>'
            f'<td class="num amount">{esc(_money(item.amount_at_risk_reporting))}{original}</td>'
            f'<td class="num age">{item.age_days:,} d{due}</td>'
            f'<td class="detail" title="{esc(item.detail)}">{esc(detail)}</td></tr>')
    if not rows:
        rows.append('<tr><td colspan="7" class="muted">No open exceptions.</td></tr>')
    shown = (f"the {len(report.top)} largest of {report.exceptions:,}" if report.exceptions > len(report.top)
             else f"all {report.exceptions:,}")
    return (
        f'<section id="top-exceptions"><h2>Largest exceptions</h2><p class="lead">Work these first: {esc(shown)}, '
        f'by amount at risk in {esc(cur)}. Age is days since first detected; "due" is the SLA moment that '
        f'passed.</p><table><thead><tr><th class="num">#</th><th>type</th><th>customer / subject</th>'
        f'<th>owner</th><th class="num">at risk ({esc(cur)})</th><th class="num">age</th><th>detail</th>'
        f'</tr></thead><tbody>{"".join(rows)}</tbody></table></section>')


def _trends(report: Report) -> str:
    cur = report.reporting_currency
    runs = report.runs
    labels = [f"{r.generated_at:%m-%d %H:%M}" for r in runs]
    count_chart = _svg_line(list(zip(labels, [float(r.exceptions) for r in runs])),
                            title="Open exceptions per report run", y_label="exceptions")
    amount_chart = _svg_line(list(zip(labels, [float(r.amount_at_risk) for r in runs])),
                             title=f"Amount at risk per report run ({cur})", y_label=cur, money=True)
    types = [g.key for g in report.by_type] + sorted(
        {t for r in runs for t in r.by_type} - {g.key for g in report.by_type})
    rows = []
    for t in types:
        counts = [r.by_type.get(t, (0, Decimal(0)))[0] for r in runs]
        latest, prev = counts[-1], (counts[-2] if len(counts) > 1 else None)
        change = ""
        if prev is not None:
            delta = latest - prev
            change = f'<span class="{"up" if delta > 0 else "down" if delta < 0 else "muted"}">{delta:+d}</span>'
        rows.append(f'<tr data-exception-type="{esc(t)}"><td class="type">{esc(t)}</td>'
                    f'<td>{_sparkline(counts, t)}</td><td class="num">{"" if prev is None else f"{prev:,}"}</td>'
                    f'<td class="num count">{latest:,}</td><td class="num">{change}</td></tr>')
    return (
        f'<section id="trends"><h2>Trends across runs</h2><p class="lead">{len(runs)} report run(s) recorded '
        f'(the last {TREND_RUNS} shown), this one last.</p>'
        f'<div class="grid2"><div class="chart" id="trend-count">{count_chart}</div>'
        f'<div class="chart" id="trend-amount">{amount_chart}</div></div>'
        f'<h3>By type</h3><table><thead><tr><th>type</th><th>open exceptions per run</th>'
        f'<th class="num">previous</th><th class="num">now</th><th class="num">change</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></section>')


def _lifecycle_section(report: Report) -> str:
    if not report.lifecycle:
        return ('<section id="lifecycle"><h2>Opened and resolved</h2>'
                '<p class="lead">No exception history yet.</p></section>')
    rows = "".join(f'<tr><td>{esc(_moment(r.detected_at))}</td><td class="num opened">{r.opened:,}</td>'
                   f'<td class="num resolved">{r.resolved:,}</td></tr>' for r in reversed(report.lifecycle))
    return (
        '<section id="lifecycle"><h2>Opened and resolved</h2><p class="lead">Per detection run of the dbt '
        'build (its as-of moment), from the exception history: problems first detected (or back after a '
        'fix) and problems no longer detected.</p><table><thead><tr><th>detection run (as of)</th>'
        f'<th class="num">opened</th><th class="num">resolved</th></tr></thead><tbody>{rows}</tbody></table>'
        '</section>')


def _sla_section(report: Report) -> str:
    charts = "".join(_sla_chart(chart) for chart in report.sla)
    return (f'<section id="sla"><h2>Service levels</h2><div class="grid2">{charts}</div>'
            f"{_receivables_block(report)}</section>")


def _sla_chart(chart: SlaChart) -> str:
    target = _fmt_days(chart.target_days)
    bars = []
    for b in chart.bins:
        segments = [(float(b.measured), "within" if b.within_target else "breach"), (float(b.waiting), "waiting")]
        tip = f"{b.label} days: {b.measured} {chart.unit_label} completed, {b.waiting} still waiting"
        bars.append((b.label, segments, tip))
    svg = _svg_stacked(bars, title=f"{chart.title}: distribution in days", y_label=chart.unit_label,
                       target_after=sum(1 for b in chart.bins if b.within_target), target_label=f"target {target} d")
    kpis = (
        f'<div class="kpis"><span><b class="share-within">{esc(_pct(chart.share_within_target))}</b> within '
        f'{esc(target)} days ({chart.within_target:,} of {chart.measured:,} {esc(chart.unit_label)})</span>'
        f'<span>median <b>{esc(_fmt_days(chart.median_days))}</b> d</span>'
        f'<span>p90 <b>{esc(_fmt_days(chart.p90_days))}</b> d</span>'
        f'<span><b>{chart.waiting:,}</b> still waiting, <b>{chart.waiting_past_target:,}</b> past target</span></div>')
    legend = ('<div class="legend"><span><span class="swatch" style="background:var(--ok)"></span>done within '
              'target</span><span><span class="swatch" style="background:var(--bad)"></span>done late</span>'
              '<span><span class="swatch" style="background:var(--wait)"></span>still waiting (days so far)'
              '</span></div>')
    return (f'<div class="chart" id="sla-{esc(chart.key)}"><h3>{esc(chart.title)}</h3>'
            f'<p class="lead">{esc(chart.measure)} Target: {esc(target)} days.</p>{kpis}{legend}{svg}</div>')


def _receivables_block(report: Report) -> str:
    if not report.receivables:
        return ""
    cur = report.reporting_currency
    total = sum((g.amount_at_risk for g in report.receivables), Decimal(0))
    rows = "".join(
        f'<tr data-aging="{esc(g.key)}"><td>{esc(AR_BUCKETS.get(g.key, g.key))}</td><td class="num">{g.count:,}</td>'
        f'<td class="num">{esc(_money(g.amount_at_risk))}</td><td class="share">{_share_bar(g.amount_at_risk, total)}'
        f'</td></tr>' for g in report.receivables)
    return (
        f'<div id="ar-aging"><h3>Receivables by days past due</h3><p class="lead">Open receivables at '
        f'{esc(_moment(report.receivables_measured_at))} (the amounts the CRM shows), in {esc(cur)}.</p>'
        f'<table><thead><tr><th>past due</th><th class="num">invoices</th><th class="num">open ({esc(cur)})</th>'
        f'<th>share</th></tr></thead><tbody>{rows}</tbody><tfoot><tr><th>total</th>'
        f'<th class="num">{sum(g.count for g in report.receivables):,}</th><th class="num">{esc(_money(total))}</th>'
        '<th></th></tr></tfoot></table></div>')


def _footer(report: Report) -> str:
    return (
        '<footer>Concord reconciliation report. Sources: <code>reconciliation.reconciliation_exceptions</code>, '
        '<code>reconciliation.reconciliation_exception_history</code>, <code>metrics.project_activations</code>, '
        '<code>metrics.invoice_readiness</code>, <code>metrics.receivable_balances</code>, '
        f'<code>{esc(HISTORY_TABLE)}</code>. Definitions: <code>dbt_project/DECISIONLOG.md</code>. '
        f'Generated {esc(_moment(report.generated_at))}.</footer>')


# --- SVG charts ---------------------------------------------------------------------------------


def _nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def _tick(value: float, money: bool) -> str:
    return _short_money(value) if money or value >= 1000 else _fmt_days(value)


def _svg_frame(width: int, height: int, title: str, y_max: float, plot: tuple[int, int, int, int],
               y_label: str, money: bool = False) -> list[str]:
    left, top, right, bottom = plot
    out = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">',
           f"<title>{esc(title)}</title>"]
    for i in range(5):
        value = y_max * i / 4
        y = bottom - (bottom - top) * i / 4
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(_tick(value, money))}</text>')
    out.append(f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>')
    out.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>')
    out.append(f'<text x="4" y="12" text-anchor="start">{esc(y_label)}</text>')
    return out


def _svg_bars(bars: Sequence[tuple[str, float, str, str]], *, title: str, y_label: str,
              width: int = 520, height: int = 220) -> str:
    """A vertical bar chart: (label, value, css class, tooltip) per bar."""
    return _svg_stacked([(label, [(value, css)], tip) for label, value, css, tip in bars], title=title,
                        y_label=y_label, width=width, height=height)


def _svg_stacked(bars: Sequence[tuple[str, Sequence[tuple[float, str]], str]], *, title: str, y_label: str,
                 width: int = 540, height: int = 250, target_after: int | None = None,
                 target_label: str = "") -> str:
    """Vertical stacked bars: (label, [(value, css class), ...], tooltip) per bar; a dashed target
    line after the first `target_after` bars."""
    plot = (52, 34, width - 12, height - 40)
    left, top, right, bottom = plot
    totals = [sum(v for v, _ in segments) for _, segments, _ in bars]
    y_max = _nice_max(max(totals, default=0))
    out = _svg_frame(width, height, title, y_max, plot, y_label)
    slot = (right - left) / max(len(bars), 1)
    bar_w = slot * 0.72
    for i, ((label, segments, tip), total) in enumerate(zip(bars, totals)):
        x = left + i * slot + (slot - bar_w) / 2
        y = float(bottom)
        out.append(f"<g><title>{esc(tip)}</title>")
        for value, css in segments:
            if value <= 0:
                continue
            h = (bottom - top) * value / y_max
            y -= h
            out.append(f'<rect class="{esc(css)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" rx="2"/>')
        out.append("</g>")
        if total:
            out.append(f'<text class="value" x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
                       f"{total:,.0f}</text>")
        out.append(f'<text x="{x + bar_w / 2:.1f}" y="{bottom + 15}" text-anchor="middle">{esc(label)}</text>')
    if target_after:
        tx = left + target_after * slot
        out.append(f'<line class="target" x1="{tx:.1f}" y1="{top - 4}" x2="{tx:.1f}" y2="{bottom}"/>')
        out.append(f'<text class="target-label" x="{tx + 4:.1f}" y="{top + 6}" text-anchor="start">'
                   f"{esc(target_label)}</text>")
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{height - 6}" text-anchor="middle">days</text>'
               if target_after is not None else "")
    out.append("</svg>")
    return "".join(out)


def _svg_line(points: Sequence[tuple[str, float]], *, title: str, y_label: str, money: bool = False,
              width: int = 540, height: int = 230) -> str:
    """A line chart with a dot and value per point; labels on the x axis (thinned when many)."""
    plot = (60, 34, width - 16, height - 44)
    left, top, right, bottom = plot
    y_max = _nice_max(max((v for _, v in points), default=0))
    out = _svg_frame(width, height, title, y_max, plot, y_label, money)
    n = len(points)
    inner_left, inner_right = left + 40, right - 40  # room for the first and last labels
    step = (inner_right - inner_left) / (n - 1) if n > 1 else 0
    xy = [((left + right) / 2 if n == 1 else inner_left + i * step, bottom - (bottom - top) * v / y_max)
          for i, (_, v) in enumerate(points)]
    if n > 1:
        out.append('<polyline class="line" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')
    every = max(1, math.ceil(n / 8))
    for i, ((label, value), (x, y)) in enumerate(zip(points, xy)):
        text = _short_money(value) if money else f"{value:,.0f}"
        out.append(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="3.5"><title>{esc(label)}: {esc(text)}'
                   "</title></circle>")
        if i % every == 0 or i == n - 1:
            out.append(f'<text x="{x:.1f}" y="{bottom + 15}" text-anchor="middle">{esc(label)}</text>')
            out.append(f'<text class="value" x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle">{esc(text)}</text>')
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{height - 6}" text-anchor="middle">report run (UTC)</text>')
    out.append("</svg>")
    return "".join(out)


def _sparkline(values: Sequence[int], label: str, width: int = 140, height: int = 26) -> str:
    peak = max(values, default=0) or 1
    n = len(values)
    xs = [width / 2] if n == 1 else [2 + i * (width - 4) / (n - 1) for i in range(n)]
    ys = [height - 3 - (height - 6) * v / peak for v in values]
    line = ('<polyline class="line" points="' + " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys)) + '"/>'
            if n > 1 else "")
    dots = "".join(f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="2"/>' for x, y in zip(xs[-1:], ys[-1:]))
    return (f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{esc(label)}: {esc(", ".join(str(v) for v in values))}"><title>{esc(label)}: '
            f'{esc(", ".join(str(v) for v in values))}</title>{line}{dots}</svg>')
