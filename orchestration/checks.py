"""Asset checks on the data itself: is it recent, how much is broken, are the firm's SLAs met.

| check | on | fails when |
|---|---|---|
| `synced_within_target` | each `raw/<system>/<table>` | its system was last synced longer ago than its target |
| `<exception_type>_within_threshold` | `reconciliation/reconciliation_exceptions` | the type's open count or amount at risk is over its limit |
| `activation_within_sla` | `metrics/project_activations` | too few deals got their project within the SLA, or one waits too long |
| `invoice_readiness_within_sla` | `metrics/invoice_readiness` | too little time was invoiced within the cycle, or some waits too long |

**Targets** live in `orchestration/thresholds.toml` (or the file `CONCORD_THRESHOLDS_FILE` names),
read each time a check runs: limits per exception type, SLA objectives, freshness hours and each
family's severity (WARN by default; ERROR where the file says so). The SLA targets in days are
the dbt project's vars, the same numbers dbt judges SLA breaches by.

**None is blocking.** They are findings for finance operations, delivery and data engineering,
with the numbers and the largest items as metadata; the CRM push goes ahead whatever they say
(account teams need current figures most when things are broken). The checks that guard the
push are `crm_assets`' key checks.

**When they run.** Each check is declared on its asset, so any run that selects the asset
evaluates it after the asset (`concord run`, which selects everything, and the jobs evaluate all
of them), and any of them can run alone without rebuilding its asset (`AssetSelection.checks`,
or "Execute" on the asset's checks tab).

**Freshness, and why not Dagster's own.** `build_last_update_freshness_checks` (and 1.13's
`FreshnessPolicy`, which supersedes it) judge only the materialisations recorded in the Dagster
instance and run from a sensor (or, for policies, the daemon with freshness enabled): a run on
an ephemeral instance (`concord run` without `DAGSTER_HOME`, the tests) has no records, and a
load through `python -m ingestion` is invisible to them. These checks take the later of two
moments: the system's last successful sync recorded in the warehouse, whoever ran it
(`ingestion.warehouse.last_synced`: its newest dlt load, or a later run that found nothing new;
what reverse ETL's freshness guard reads), and the asset's last materialisation in the
instance. Syncs are recorded per source run, so that moment is one for all of a system's tables.

**Reading.** All read the warehouse read-only, under the writers' lock (DuckDB admits no reader
beside another process's writer), in pool `warehouse`.
"""

import contextlib
import datetime as dt
import math
import os
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Mapping

import dagster as dg
import duckdb
from dagster_dbt import get_asset_key_for_model

from ingestion.warehouse import SYSTEMS, WAREHOUSE_ENV, WriterLock, last_synced, warehouse_path
from orchestration.dbt_assets import dbt_models
from orchestration.ingestion_assets import INGESTION_ASSETS
from orchestration.reconciliation_report import EXCEPTION_TYPES, SlaChart, project_vars, sla_charts

POOL = "warehouse"
THRESHOLDS_FILE_ENV = "CONCORD_THRESHOLDS_FILE"
DEFAULT_THRESHOLDS_FILE = Path(__file__).with_name("thresholds.toml")
FRESHNESS_ENV = "CONCORD_FRESHNESS_HOURS"  # all systems; CONCORD_FRESHNESS_<SYSTEM>_HOURS for one
DEFAULT_FRESHNESS_HOURS = 26.0
SAMPLE = 10

FRESHNESS_CHECK = "synced_within_target"
ACTIVATION_CHECK = "activation_within_sla"
READINESS_CHECK = "invoice_readiness_within_sla"
SLA_NAMES = {ACTIVATION_CHECK: "project_activation", READINESS_CHECK: "invoice_readiness"}

EXCEPTIONS_KEY = get_asset_key_for_model([dbt_models], "reconciliation_exceptions")
ACTIVATIONS_KEY = get_asset_key_for_model([dbt_models], "project_activations")
READINESS_KEY = get_asset_key_for_model([dbt_models], "invoice_readiness")
EXCEPTIONS = "reconciliation.reconciliation_exceptions"

SEVERITIES = {"warn": dg.AssetCheckSeverity.WARN, "error": dg.AssetCheckSeverity.ERROR}


def threshold_check_name(exception_type: str) -> str:
    return f"{exception_type}_within_threshold"


# --- thresholds -------------------------------------------------------------------------------


class ThresholdsError(ValueError):
    """The thresholds file is missing, unreadable or names something unknown; the message says where."""


@dataclass(frozen=True)
class ExceptionLimit:
    """How many open exceptions of a type, and how much at risk, the firm tolerates (inf: no limit)."""

    max_count: float
    max_amount_at_risk: float
    severity: dg.AssetCheckSeverity


@dataclass(frozen=True)
class SlaObjective:
    """The share of items that must meet an SLA, and the longest any item may wait (None: twice the target)."""

    objective: float
    max_wait_days: float | None
    severity: dg.AssetCheckSeverity

    def max_wait(self, target_days: float) -> float:
        return self.max_wait_days if self.max_wait_days is not None else 2 * target_days


@dataclass(frozen=True)
class Thresholds:
    """Everything the data checks judge against, from one file and the environment."""

    source: Path
    freshness_hours: dict[str, float]
    freshness_severity: dg.AssetCheckSeverity
    exceptions: dict[str, ExceptionLimit]
    sla: dict[str, SlaObjective]


def thresholds_file() -> Path:
    """`CONCORD_THRESHOLDS_FILE`, else `orchestration/thresholds.toml`."""
    return Path(os.environ.get(THRESHOLDS_FILE_ENV) or DEFAULT_THRESHOLDS_FILE).resolve()


def load_thresholds(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Thresholds:
    """Read the thresholds file, apply the freshness overrides of the environment, and check it all.

    Raises:
        ThresholdsError: naming the file and the entry to fix.
    """
    path = path or thresholds_file()
    environ = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ThresholdsError(f"thresholds file {path} ({THRESHOLDS_FILE_ENV}): {exc}") from exc
    _only(raw, {"freshness", "exceptions", "sla"}, path, "")

    freshness = dict(raw.get("freshness") or {})
    _only(freshness, {"severity", *SYSTEMS}, path, "freshness")
    hours: dict[str, float] = {}
    for system in SYSTEMS:
        name = f"CONCORD_FRESHNESS_{system.upper()}_HOURS"
        if environ.get(name):
            hours[system] = _env_hours(environ, name)
        elif environ.get(FRESHNESS_ENV):
            hours[system] = _env_hours(environ, FRESHNESS_ENV)
        else:
            hours[system] = _number(freshness.get(system, DEFAULT_FRESHNESS_HOURS), path, f"freshness.{system}")

    exceptions = dict(raw.get("exceptions") or {})
    per_type = {k: exceptions.pop(k) for k in list(exceptions) if isinstance(exceptions[k], dict)}
    _only(exceptions, {"severity", "max_count", "max_amount_at_risk"}, path, "exceptions")
    _only(per_type, set(EXCEPTION_TYPES), path, "exceptions")
    limits = {}
    for exception_type in EXCEPTION_TYPES:
        entry = {**exceptions, **per_type.get(exception_type, {})}
        where = f"exceptions.{exception_type}"
        _only(entry, {"severity", "max_count", "max_amount_at_risk"}, path, where)
        limits[exception_type] = ExceptionLimit(
            max_count=_number(entry.get("max_count", math.inf), path, f"{where}.max_count"),
            max_amount_at_risk=_number(entry.get("max_amount_at_risk", math.inf), path,
                                       f"{where}.max_amount_at_risk"),
            severity=_severity(entry.get("severity", "warn"), path, f"{where}.severity"))

    sla_raw = dict(raw.get("sla") or {})
    _only(sla_raw, set(SLA_NAMES.values()), path, "sla")
    sla = {}
    for name in SLA_NAMES.values():
        entry = dict(sla_raw.get(name) or {})
        where = f"sla.{name}"
        _only(entry, {"severity", "objective", "max_wait_days"}, path, where)
        objective = _number(entry.get("objective", 0.95), path, f"{where}.objective")
        if objective > 1:
            raise ThresholdsError(f"{path}: {where}.objective is a share between 0 and 1, not {objective:g}")
        max_wait = entry.get("max_wait_days")
        sla[name] = SlaObjective(
            objective=objective,
            max_wait_days=None if max_wait is None else _number(max_wait, path, f"{where}.max_wait_days"),
            severity=_severity(entry.get("severity", "warn"), path, f"{where}.severity"))

    return Thresholds(source=path, freshness_hours=hours,
                      freshness_severity=_severity(freshness.get("severity", "warn"), path, "freshness.severity"),
                      exceptions=limits, sla=sla)


def _only(table: Mapping[str, Any], allowed: set[str], path: Path, where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        place = f"[{where}]" if where else "the top level"
        raise ThresholdsError(f"{path}: {place} has unknown entries {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(allowed))}")


def _number(value: Any, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or math.isnan(value):
        raise ThresholdsError(f"{path}: {where} must be a number of at least 0 (inf for no limit), not {value!r}")
    return float(value)


def _severity(value: Any, path: Path, where: str) -> dg.AssetCheckSeverity:
    severity = SEVERITIES.get(str(value).lower())
    if severity is None:
        raise ThresholdsError(f"{path}: {where} must be \"warn\" or \"error\", not {value!r}")
    return severity


def _env_hours(environ: Mapping[str, str], name: str) -> float:
    try:
        hours = float(environ[name])
    except ValueError:
        hours = -1.0
    if hours < 0 or math.isnan(hours):
        raise ThresholdsError(f"{name}={environ[name]!r} is not a number of hours of at least 0")
    return hours


def _thresholds() -> Thresholds:
    try:
        return load_thresholds()
    except ThresholdsError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


# --- reading the warehouse --------------------------------------------------------------------


@contextlib.contextmanager
def reading_warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse, under the writers' lock."""
    path = warehouse_path()
    if not path.exists():
        raise dg.Failure(description=f"there is no warehouse at {path} ({WAREHOUSE_ENV}): load the systems "
                                     f"and build the models first (`concord run`).", allow_retries=False)
    with WriterLock(path), duckdb.connect(str(path), read_only=True) as con:
        yield con


def _missing(relation: str, model: str) -> str:
    return f"{relation} is not in the warehouse: build it (`dbt build --select +{model}`, or `concord run`)."


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "/").replace("\n", " ")


def _money(amount: Decimal | float | None) -> str:
    return "\u2013" if amount is None else f"{amount:,.2f}"


def _limit(value: float, money: bool = False) -> str:
    if math.isinf(value):
        return "no limit"
    return _money(value) if money else f"{value:g}"


def _limit_metadata(value: float) -> dg.MetadataValue:
    if math.isinf(value):
        return dg.MetadataValue.text("no limit")
    return dg.MetadataValue.float(value) if value != int(value) else dg.MetadataValue.int(int(value))


# --- freshness --------------------------------------------------------------------------------


def _last_synced_of(system: str) -> dt.datetime | None:
    path = warehouse_path()
    if not path.exists():
        return None
    with WriterLock(path), duckdb.connect(str(path), read_only=True) as con:
        return last_synced(con, system)


def freshness_result(check: dg.AssetCheckKey, system: str, *, target_hours: float,
                     severity: dg.AssetCheckSeverity, loaded_at: dt.datetime | None,
                     materialised_at: dt.datetime | None, now: dt.datetime) -> dg.AssetCheckResult:
    """The verdict on one raw table: synced (loaded by dlt or materialised by Dagster) within the target."""
    variable = f"CONCORD_FRESHNESS_{system.upper()}_HOURS"
    metadata: dict[str, Any] = {"target_hours": dg.MetadataValue.float(target_hours)}
    if loaded_at is not None:
        metadata["last_load_at"] = dg.MetadataValue.timestamp(loaded_at)
    if materialised_at is not None:
        metadata["last_materialised_at"] = dg.MetadataValue.timestamp(materialised_at)
    synced = max((m for m in (loaded_at, materialised_at) if m is not None), default=None)
    fix = (f"run the `ingest` job or `concord run --select group:{system}`; if it ran, its failure says why "
           f"(or raise the target: {variable} or thresholds.toml [freshness])")
    if synced is None:
        return dg.AssetCheckResult(
            asset_key=check.asset_key, check_name=check.name, passed=False, severity=severity, metadata=metadata,
            description=f"raw_{system} has never been synced: {fix}.")
    age_h = max((now - synced).total_seconds() / 3600, 0.0)
    metadata.update(last_synced_at=dg.MetadataValue.timestamp(synced), hours_since_sync=dg.MetadataValue.float(
        round(age_h, 3)))
    how = "load" if synced == loaded_at else "Dagster materialisation"
    passed = age_h <= target_hours
    description = (f"raw_{system} last synced {age_h:.1f} h ago ({how}, {synced:%Y-%m-%d %H:%M} UTC), "
                   + (f"within its {target_hours:g} h target." if passed else
                      f"older than its {target_hours:g} h target: {fix}."))
    return dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=passed, severity=severity,
                               metadata=metadata, description=description)


def freshness_check(raw: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    """`synced_within_target` on each table of one system's raw multi-asset, in one step."""
    keys = sorted(raw.keys)
    system = keys[0].path[1]

    @dg.multi_asset_check(
        name=f"raw_{system}_freshness", can_subset=True, pool=POOL,
        description=f"Every raw/{system} table was synced within its target "
                    f"(thresholds.toml [freshness], CONCORD_FRESHNESS_{system.upper()}_HOURS).",
        specs=[dg.AssetCheckSpec(
            FRESHNESS_CHECK, asset=key,
            description=f"{system} was synced within its target: the last successful load into raw_{system} "
                        f"or the last materialisation of this table, whichever is later, is no older than "
                        f"CONCORD_FRESHNESS_{system.upper()}_HOURS (thresholds.toml [freshness]).")
            for key in keys])
    def _fresh(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        thresholds = _thresholds()
        loaded_at = _last_synced_of(system)
        now = dt.datetime.now(dt.timezone.utc)
        for check in sorted(context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()):
            event = context.instance.get_latest_materialization_event(check.asset_key)
            materialised_at = dt.datetime.fromtimestamp(event.timestamp, dt.timezone.utc) if event else None
            yield freshness_result(check, system, target_hours=thresholds.freshness_hours[system],
                                   severity=thresholds.freshness_severity, loaded_at=loaded_at,
                                   materialised_at=materialised_at, now=now)

    return _fresh


# --- reconciliation thresholds ----------------------------------------------------------------


@dataclass(frozen=True)
class TypeTotals:
    """One exception type's open exceptions: how many, what they put at risk, and the largest."""

    exception_type: str
    count: int = 0
    amount_at_risk: Decimal = Decimal(0)
    without_reporting_amount: int = 0
    high: int = 0
    largest: tuple[tuple, ...] = ()


def exception_totals(con: duckdb.DuckDBPyConnection, types: list[str], sample: int = SAMPLE
                     ) -> dict[str, TypeTotals]:
    """Per type (zero for a type with none): count, amount at risk in the reporting currency,
    and its `sample` largest exceptions (subject, customer, owner, amount, first detected)."""
    counts = {t: (n, a, unconverted, high) for t, n, a, unconverted, high in con.execute(f"""
        SELECT exception_type, count(*), coalesce(sum(amount_at_risk_reporting), 0),
               count(*) FILTER (WHERE amount_at_risk_reporting IS NULL), count(*) FILTER (WHERE severity = 'high')
        FROM {EXCEPTIONS} WHERE exception_type IN (SELECT unnest(?)) GROUP BY 1""", [types]).fetchall()}
    largest: dict[str, list[tuple]] = {}
    for row in con.execute(f"""
        SELECT e.exception_type, e.source_system, e.source_record_id, c.customer_name, e.owner_system,
               e.amount_at_risk_reporting, e.first_detected_at
        FROM {EXCEPTIONS} AS e
        LEFT JOIN core.customers AS c ON c.customer_id = e.customer_id
        WHERE e.exception_type IN (SELECT unnest(?))
        QUALIFY row_number() OVER (PARTITION BY e.exception_type ORDER BY e.amount_at_risk_reporting DESC NULLS LAST,
                                   e.first_detected_at, e.exception_id) <= ?
        ORDER BY e.exception_type, e.amount_at_risk_reporting DESC NULLS LAST, e.first_detected_at, e.exception_id""",
                           [types, sample]).fetchall():
        largest.setdefault(row[0], []).append(row[1:])
    return {t: TypeTotals(t, *counts.get(t, (0, Decimal(0), 0, 0)), largest=tuple(largest.get(t, ())))
            for t in types}


def threshold_result(totals: TypeTotals, limit: ExceptionLimit, currency: str) -> dg.AssetCheckResult:
    """The verdict on one exception type against its limits, with its largest exceptions as a table."""
    over = []
    if totals.count > limit.max_count:
        over.append(f"more than {limit.max_count:g} open")
    if float(totals.amount_at_risk) > limit.max_amount_at_risk:
        over.append(f"more than {_money(limit.max_amount_at_risk)} {currency} at risk")
    metadata: dict[str, Any] = {
        "open_exceptions": dg.MetadataValue.int(totals.count),
        "amount_at_risk": dg.MetadataValue.float(float(totals.amount_at_risk)),
        "reporting_currency": dg.MetadataValue.text(currency),
        "high_severity": dg.MetadataValue.int(totals.high),
        "max_count": _limit_metadata(limit.max_count),
        "max_amount_at_risk": _limit_metadata(limit.max_amount_at_risk),
        "threshold": dg.MetadataValue.md(
            f"| | open | amount at risk ({currency}) |\n|---|---:|---:|\n"
            f"| now | {totals.count} | {_money(totals.amount_at_risk)} |\n"
            f"| limit | {_limit(limit.max_count)} | {_limit(limit.max_amount_at_risk, money=True)} |"),
    }
    if totals.without_reporting_amount:
        metadata["without_reporting_amount"] = dg.MetadataValue.int(totals.without_reporting_amount)
    if totals.largest:
        rows = [f"| {_cell(system)}:{_cell(record)} | {_cell(customer)} | {_cell(owner)} | {_money(amount)} | "
                f"{first:%Y-%m-%d} |" for system, record, customer, owner, amount, first in totals.largest]
        metadata["largest"] = dg.MetadataValue.md(
            f"| subject | customer | owner | amount at risk ({currency}) | first detected |\n|---|---|---|---:|---|\n"
            + "\n".join(rows)
            + (f"\n\n{totals.count - len(rows)} more in {EXCEPTIONS}" if totals.count > len(rows) else ""))
    what = (f"{totals.count} open {totals.exception_type} exception{'s' if totals.count != 1 else ''}, "
            f"{_money(totals.amount_at_risk)} {currency} at risk")
    if over:
        description = (f"{what}: {' and '.join(over)}. The largest are listed; the reconciliation report has them all "
                       f"(limits: thresholds.toml [exceptions.{totals.exception_type}]).")
    else:
        amount_limit = ("no amount limit" if math.isinf(limit.max_amount_at_risk)
                        else f"{_money(limit.max_amount_at_risk)} {currency}")
        description = f"{what}, within the limits ({_limit(limit.max_count)} open, {amount_limit})."
    return dg.AssetCheckResult(asset_key=EXCEPTIONS_KEY, check_name=threshold_check_name(totals.exception_type),
                               passed=not over, severity=limit.severity, metadata=metadata, description=description)


@dg.multi_asset_check(
    name="reconciliation_exception_thresholds", can_subset=True, pool=POOL,
    description="Each exception type's open count and amount at risk against the firm's limits (thresholds.toml).",
    specs=[dg.AssetCheckSpec(
        threshold_check_name(exception_type), asset=EXCEPTIONS_KEY,
        description=f"Open {exception_type} exceptions ({description}) are no more than the firm tolerates: "
                    f"count and amount at risk (reporting currency) within thresholds.toml "
                    f"[exceptions.{exception_type}]. Not blocking.")
        for exception_type, description in EXCEPTION_TYPES.items()])
def reconciliation_thresholds(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
    thresholds = _thresholds()
    names = {threshold_check_name(t): t for t in EXCEPTION_TYPES}
    types = [names[k.name] for k in context.selected_asset_check_keys]
    types.sort(key=list(EXCEPTION_TYPES).index)
    currency = str(project_vars().get("reporting_currency", "USD"))
    with reading_warehouse() as con:
        try:
            totals = exception_totals(con, types)
        except duckdb.CatalogException:
            for exception_type in types:
                yield dg.AssetCheckResult(asset_key=EXCEPTIONS_KEY, check_name=threshold_check_name(exception_type),
                                          passed=False, description=_missing(EXCEPTIONS, "reconciliation_exceptions"))
            return
    for exception_type in types:
        yield threshold_result(totals[exception_type], thresholds.exceptions[exception_type], currency)


# --- business SLAs ----------------------------------------------------------------------------


def _waiting_activations(con: duckdb.DuckDBPyConnection, target: float, max_wait: float) -> dict[str, Any]:
    (longest, past_max) = con.execute(
        "SELECT max(awaiting_days), count(*) FILTER (WHERE awaiting_days > ?) FROM metrics.project_activations "
        "WHERE NOT is_activated", [max_wait]).fetchone()
    rows = con.execute("""
        SELECT a.deal_id, c.customer_name, a.close_at, a.awaiting_days
        FROM metrics.project_activations AS a LEFT JOIN core.customers AS c ON c.customer_id = a.customer_id
        WHERE NOT a.is_activated AND a.awaiting_days > ? ORDER BY a.awaiting_days DESC, a.deal_id LIMIT ?""",
                       [target, SAMPLE]).fetchall()
    table = ("| deal | customer | closed | waiting (days) |\n|---|---|---|---:|\n"
             + "\n".join(f"| {_cell(deal)} | {_cell(customer)} | {closed:%Y-%m-%d} | {days:g} |"
                         for deal, customer, closed, days in rows)) if rows else None
    return {"longest": longest, "past_max": past_max, "table": table}


def _waiting_readiness(con: duckdb.DuckDBPyConnection, target: float, max_wait: float) -> dict[str, Any]:
    (longest, past_max) = con.execute(
        "SELECT max(waiting_days), count(*) FILTER (WHERE waiting_days > ?) FROM metrics.invoice_readiness "
        "WHERE NOT is_invoiced AND is_ready", [max_wait]).fetchone()
    rows = con.execute("""
        SELECT r.project_code, c.customer_name, strftime(r.spent_month, '%Y-%m'), count(*), sum(r.hours),
               sum(r.billable_value_reporting), max(r.waiting_days)
        FROM metrics.invoice_readiness AS r LEFT JOIN core.customers AS c ON c.customer_id = r.customer_id
        WHERE NOT r.is_invoiced AND r.is_ready AND r.waiting_days > ?
        GROUP BY ALL ORDER BY max(r.waiting_days) DESC, 1, 3 LIMIT ?""", [target, SAMPLE]).fetchall()
    currency = str(project_vars().get("reporting_currency", "USD"))
    table = (f"| project | customer | month | entries | hours | value ({currency}) | waiting (days) |\n"
             "|---|---|---|---:|---:|---:|---:|\n"
             + "\n".join(f"| {_cell(code)} | {_cell(customer)} | {month} | {n} | {hours:,.2f} | {_money(value)} | "
                         f"{days:g} |" for code, customer, month, n, hours, value, days in rows)) if rows else None
    return {"longest": longest, "past_max": past_max, "table": table}


def sla_result(check: dg.AssetCheckKey, chart: SlaChart, objective: SlaObjective, waiting: dict[str, Any]
               ) -> dg.AssetCheckResult:
    """The verdict on one SLA: the share within target against the objective, and the longest wait."""
    max_wait = objective.max_wait(chart.target_days)
    share = chart.share_within_target
    metadata: dict[str, Any] = {
        "target_days": dg.MetadataValue.float(chart.target_days),
        "objective": dg.MetadataValue.float(objective.objective),
        "measured": dg.MetadataValue.int(chart.measured),
        "within_target": dg.MetadataValue.int(chart.within_target),
        "past_target": dg.MetadataValue.int(chart.measured - chart.within_target),
        "waiting": dg.MetadataValue.int(chart.waiting),
        "waiting_past_target": dg.MetadataValue.int(chart.waiting_past_target),
        "max_wait_days": dg.MetadataValue.float(max_wait),
        "waiting_past_max_wait": dg.MetadataValue.int(waiting["past_max"]),
    }
    for name, value in (("share_within_target", share), ("median_days", chart.median_days),
                        ("p90_days", chart.p90_days), ("longest_wait_days", waiting["longest"])):
        if value is not None:
            metadata[name] = dg.MetadataValue.float(round(float(value), 4))
    if waiting["table"]:
        metadata["waiting_past_target_items"] = dg.MetadataValue.md(
            waiting["table"] + (f"\n\n{chart.waiting_past_target} waiting past the target in all"
                                if chart.waiting_past_target > SAMPLE else ""))
    unit = chart.unit_label
    findings = []
    if share is not None and share < objective.objective:
        findings.append(f"only {share:.1%} of {chart.measured} {unit} within the {chart.target_days:g}-day target, "
                        f"short of the {objective.objective:.0%} objective")
    if waiting["past_max"]:
        findings.append(f"{waiting['past_max']} {unit} waiting longer than {max_wait:g} days "
                        f"(the longest {float(waiting['longest']):g})")
    headline = (f"{chart.title}: " + (f"{share:.1%} of {chart.measured} {unit} within {chart.target_days:g} days, "
                                      f"median {chart.median_days:g}, p90 {chart.p90_days:g}"
                                      if share is not None else f"no {unit} measured yet")
                + f"; {chart.waiting} waiting, {chart.waiting_past_target} past the target")
    description = (f"{headline}. " + ("; ".join(findings) + " (objectives: thresholds.toml "
                                      f"[sla.{SLA_NAMES[check.name]}])." if findings else "Objective met."))
    return dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=not findings,
                               severity=objective.severity, metadata=metadata, description=description)


@dg.multi_asset_check(
    name="business_slas", can_subset=True, pool=POOL,
    description="Project activation time and invoice readiness latency against the firm's SLA objectives.",
    specs=[
        dg.AssetCheckSpec(ACTIVATION_CHECK, asset=ACTIVATIONS_KEY,
                          description="Won deals get their Harvest project within `activation_sla_days` (dbt var): "
                                      "at least the objective share of activated deals did, and no deal still "
                                      "waiting has waited longer than `max_wait_days` (thresholds.toml "
                                      "[sla.project_activation]). Not blocking."),
        dg.AssetCheckSpec(READINESS_CHECK, asset=READINESS_KEY,
                          description="Approved billable time is invoiced within `tm_billing_sla_days` (dbt var) "
                                      "of being ready: at least the objective share of invoiced time was, and no "
                                      "ready time still unbilled has waited longer than `max_wait_days` "
                                      "(thresholds.toml [sla.invoice_readiness]). Not blocking."),
    ])
def business_slas(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
    thresholds = _thresholds()
    selected = {k.name: k for k in context.selected_asset_check_keys}
    with reading_warehouse() as con:
        try:
            activation, readiness = sla_charts(con)
        except duckdb.CatalogException:
            for name, check in selected.items():
                model = "project_activations" if name == ACTIVATION_CHECK else "invoice_readiness"
                yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=name, passed=False,
                                          description=_missing(f"metrics.{model}", model))
            return
        results = []
        for name, chart, waiting in ((ACTIVATION_CHECK, activation, _waiting_activations),
                                     (READINESS_CHECK, readiness, _waiting_readiness)):
            if name not in selected:
                continue
            objective = thresholds.sla[SLA_NAMES[name]]
            results.append(sla_result(selected[name], chart, objective,
                                      waiting(con, chart.target_days, objective.max_wait(chart.target_days))))
    yield from results


FRESHNESS_CHECKS = [freshness_check(raw) for raw in INGESTION_ASSETS]
DATA_CHECKS = [*FRESHNESS_CHECKS, reconciliation_thresholds, business_slas]
FRESHNESS_SELECTION = dg.AssetSelection.checks(*FRESHNESS_CHECKS)
