"""The data checks and the reconciliation report asset, against a real dbt-built small firm.

Each test gets its own copy of one built firm and runs only what it asserts on, in-process: the
report asset, or checks alone (their assets are not rebuilt; a check runs without its asset):
- the report asset writes the page and links it, with the exceptions by type equal to SQL;
- each exception type's threshold check judges the count and amount at risk against
  `thresholds.toml` (a realistic mix: some pass, some fail at WARN), or against the file
  `CONCORD_THRESHOLDS_FILE` names;
- the SLA checks report the figures SQL gives and fail when an item waits too long;
- a source's freshness check fails when its last load is older than its target.
"""

import datetime as dt
import math
import re
from pathlib import Path

import dagster as dg
import pytest

from ingestion.warehouse import SYNCS_TABLE
from orchestration.checks import (
    ACTIVATION_CHECK,
    ACTIVATIONS_KEY,
    DATA_CHECKS,
    EXCEPTIONS_KEY,
    FRESHNESS_CHECK,
    FRESHNESS_CHECKS,
    READINESS_CHECK,
    READINESS_KEY,
    ThresholdsError,
    business_slas,
    load_thresholds,
    reconciliation_thresholds,
    threshold_check_name,
)
from orchestration.definitions import ASSET_CHECKS, ASSETS, RESOURCES, defs
from orchestration.ingestion_assets import INGESTION_ASSETS
from orchestration.reconciliation_report import EXCEPTION_TYPES
from orchestration.report_assets import REPORT_KEY, REPORT_MODELS
from tests.reverse_etl.conftest import Firm, firm  # noqa: F401 - fixtures

EXCEPTIONS = "reconciliation.reconciliation_exceptions"
ENV_KNOBS = ("CONCORD_THRESHOLDS_FILE", "CONCORD_REPORT_DIR", "CONCORD_FRESHNESS_HOURS",
             *(f"CONCORD_FRESHNESS_{s}_HOURS" for s in ("HUBSPOT", "STRIPE", "HARVEST", "ERP")))


@pytest.fixture
def w(firm: Firm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Firm:  # noqa: F811
    """The firm copy, with the environment pointing Concord at its warehouse and no overrides."""
    for name in ENV_KNOBS:
        monkeypatch.delenv(name, raising=False)
    for name, value in firm.w.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CONCORD_REPORT_DIR", str(tmp_path / "reports"))
    return firm


def run(selection: dg.AssetSelection, instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize([*ASSETS, *ASSET_CHECKS], selection=selection, resources=RESOURCES, instance=instance,
                          raise_on_error=False)


def checks_of(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}


def thresholds_file(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(text)
    monkeypatch.setenv("CONCORD_THRESHOLDS_FILE", str(path))


def by_type(w: Firm) -> dict[str, tuple[int, float]]:
    return {t: (n, float(a)) for t, n, a in w.query(
        f"SELECT exception_type, count(*), round(coalesce(sum(amount_at_risk_reporting), 0), 2) FROM {EXCEPTIONS} "
        "GROUP BY 1")}


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


# --- definitions ------------------------------------------------------------------------------


def test_the_checks_and_the_report_are_defined_and_run_with_everything() -> None:
    graph = defs.resolve_asset_graph()
    report = graph.get(REPORT_KEY)
    assert report.group_name == "reports" and report.pools == {"warehouse"}
    assert {k.to_user_string() for k in report.parent_keys} == {
        "reconciliation/reconciliation_exceptions", "reconciliation/reconciliation_exception_history",
        "core/customers", "metrics/project_activations", "metrics/invoice_readiness", "metrics/receivable_balances"}
    assert len(REPORT_MODELS) == len(report.parent_keys)

    ours = {key for checks in DATA_CHECKS for key in checks.check_keys}
    raw = {key for assets in INGESTION_ASSETS for key in assets.keys}  # dlt's child tables are loaded with them
    assert {k.asset_key for k in ours if k.name == FRESHNESS_CHECK} == raw
    assert {k.name for k in ours if k.asset_key == EXCEPTIONS_KEY} == {threshold_check_name(t) for t in EXCEPTION_TYPES}
    assert {dg.AssetCheckKey(ACTIVATIONS_KEY, ACTIVATION_CHECK),
            dg.AssetCheckKey(READINESS_KEY, READINESS_CHECK)} <= ours
    assert len(ours) == len(raw) + len(EXCEPTION_TYPES) + 2
    assert not any(graph.get(key).blocking for key in ours), "findings, never a reason to hold the CRM push back"

    # `concord run` (runner.materialize: a job selecting "*" over ASSETS and ASSET_CHECKS) and the
    # nightly job run them all
    ops = {"reports__reconciliation_report", "reconciliation_exception_thresholds", "business_slas",
           *(f"raw_{s}_freshness" for s in ("hubspot", "stripe", "harvest", "erp"))}
    everything = dg.Definitions(jobs=[dg.define_asset_job("everything", selection="*")],
                                assets=[*ASSETS, *ASSET_CHECKS], resources=RESOURCES)
    assert ops <= {n.name for n in everything.resolve_job_def("everything").graph.node_defs}
    assert ops <= {n.name for n in defs.resolve_job_def("full_sync").graph.node_defs}


def test_the_thresholds_file_is_complete_and_checked(tmp_path: Path) -> None:
    thresholds = load_thresholds(environ={})
    assert set(thresholds.exceptions) == set(EXCEPTION_TYPES)
    assert thresholds.freshness_hours == {"hubspot": 3, "stripe": 3, "harvest": 26, "erp": 26}
    assert load_thresholds(environ={"CONCORD_FRESHNESS_HOURS": "5", "CONCORD_FRESHNESS_ERP_HOURS": "50"}
                           ).freshness_hours == {"hubspot": 5, "stripe": 5, "harvest": 5, "erp": 50}
    for text, complaint in (("[exceptions.no_such_type]\nmax_count = 1\n", "no_such_type"),
                            ("[exceptions]\nseverity = 'fatal'\n", "exceptions.customer_missing_in_erp.severity"),
                            ("[sla.project_activation]\nobjective = 95\n", "objective"),
                            ("[freshness]\nstripe = -1\n", "freshness.stripe")):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        with pytest.raises(ThresholdsError, match=re.escape(complaint)):
            load_thresholds(path, environ={})


# --- the report asset -------------------------------------------------------------------------


def test_the_report_asset_writes_the_page_and_links_it(w: Firm, tmp_path: Path) -> None:
    result = run(dg.AssetSelection.assets(REPORT_KEY))
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == REPORT_KEY
    m = event.materialization.metadata
    path = Path(m["report"].value)
    assert path == tmp_path / "reports" / "reconciliation_report.html" and path.is_file()
    assert m["report_url"].value == path.as_uri() and m["report_url"].value.startswith("file:///")
    assert Path(m["archived_report"].value).is_file()
    assert "<html" in path.read_text()[:500].lower()

    expected = by_type(w)
    assert m["exceptions"].value == sum(n for n, _ in expected.values()) > 0
    assert m["amount_at_risk"].value == pytest.approx(sum(a for _, a in expected.values()), abs=0.01)
    assert m["reporting_currency"].value == "USD" and m["seconds"].value >= 0
    table = m["exceptions_by_type"].value
    rows = re.findall(r"^\| ([a-z_]+) \| (\d+) \| ([\d,.]+) \|$", table, re.M)
    assert {t: (int(n), float(a.replace(",", ""))) for t, n, a in rows} == expected
    assert re.search(rf"^\| \*\*total\*\* \| \*\*{m['exceptions'].value}\*\* \|", table, re.M)
    assert w.query("SELECT count(DISTINCT generated_at) FROM reporting.reconciliation_report_runs") == [(1,)]


# --- reconciliation thresholds ----------------------------------------------------------------


def test_the_default_thresholds_give_a_mix_and_report_sql_figures(w: Firm) -> None:
    result = run(dg.AssetSelection.checks(reconciliation_thresholds))
    checks = checks_of(result)
    assert not result.get_asset_materialization_events(), "checks run without rebuilding the exceptions"
    assert set(checks) == {(EXCEPTIONS_KEY.to_user_string(), threshold_check_name(t)) for t in EXCEPTION_TYPES}
    verdicts = [c.passed for c in checks.values()]
    assert any(verdicts) and not all(verdicts), "the small firm's faults: some types within limits, some over"
    assert {c.severity for c in checks.values() if not c.passed} == {dg.AssetCheckSeverity.WARN}

    expected = by_type(w)
    for exception_type in EXCEPTION_TYPES:
        m = checks[(EXCEPTIONS_KEY.to_user_string(), threshold_check_name(exception_type))].metadata
        count, amount = expected.get(exception_type, (0, 0.0))
        assert m["open_exceptions"].value == count
        assert m["amount_at_risk"].value == pytest.approx(amount, abs=0.01)
        assert "| now |" in m["threshold"].value
        if count:
            assert len(re.findall(r"^\| \w+:", m["largest"].value, re.M)) == min(count, 10)


def test_a_threshold_below_the_count_fails_and_one_above_passes(w: Firm, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    counts = by_type(w)
    exception_type = max(counts, key=lambda t: (counts[t][0], t))
    count = counts[exception_type][0]
    key = (EXCEPTIONS_KEY.to_user_string(), threshold_check_name(exception_type))
    selection = dg.AssetSelection.checks(dg.AssetCheckKey(EXCEPTIONS_KEY, threshold_check_name(exception_type)))

    thresholds_file(tmp_path, f"[exceptions.{exception_type}]\nmax_count = {count - 1}\n", monkeypatch)
    below = checks_of(run(selection))
    assert set(below) == {key}, "one check of the multi-check runs alone"
    assert not below[key].passed and below[key].severity == dg.AssetCheckSeverity.WARN
    assert below[key].metadata["max_count"].value == count - 1
    assert f"more than {count - 1} open" in below[key].description

    thresholds_file(tmp_path, f"[exceptions.{exception_type}]\nmax_count = {count}\nmax_amount_at_risk = inf\n",
                    monkeypatch)
    at = checks_of(run(selection))[key]
    assert at.passed and at.metadata["max_amount_at_risk"].value == "no limit"

    amount = counts[exception_type][1]
    thresholds_file(tmp_path, f"[exceptions]\nseverity = 'error'\n[exceptions.{exception_type}]\n"
                              f"max_amount_at_risk = {amount / 2}\n", monkeypatch)
    over = checks_of(run(selection))[key]
    assert not over.passed and over.severity == dg.AssetCheckSeverity.ERROR and "at risk" in over.description


def test_a_broken_thresholds_file_fails_the_step_naming_it(w: Firm, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    thresholds_file(tmp_path, "[exceptions]\nmax_count = 'ten'\n", monkeypatch)
    result = run(dg.AssetSelection.checks(reconciliation_thresholds))
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "exceptions.customer_missing_in_erp.max_count" in failure.step_failure_data.user_failure_data.description


# --- business SLAs ----------------------------------------------------------------------------


def test_the_sla_checks_report_what_sql_says(w: Firm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checks = checks_of(run(dg.AssetSelection.checks(business_slas)))
    activation = checks[(ACTIVATIONS_KEY.to_user_string(), ACTIVATION_CHECK)]
    readiness = checks[(READINESS_KEY.to_user_string(), READINESS_CHECK)]

    days = [float(d) for (d,) in w.query("SELECT activation_days FROM metrics.project_activations "
                                         "WHERE is_activated AND activation_days IS NOT NULL")]
    (within,) = w.query("SELECT count(*) FROM metrics.project_activations WHERE is_activated AND is_within_sla")[0]
    (late_waiters, longest) = w.query("SELECT count(*) FILTER (WHERE awaiting_days > 14), max(awaiting_days) "
                                      "FROM metrics.project_activations WHERE NOT is_activated")[0]
    m = activation.metadata
    assert m["target_days"].value == 14 and m["measured"].value == len(days) > 0
    assert m["median_days"].value == pytest.approx(nearest_rank(days, 0.5))
    assert m["p90_days"].value == pytest.approx(nearest_rank(days, 0.9))
    assert m["share_within_target"].value == pytest.approx(within / len(days), abs=1e-4)
    assert m["waiting_past_target"].value == late_waiters
    assert m["longest_wait_days"].value == pytest.approx(float(longest))

    latency = [float(d) for (d,) in w.query("SELECT readiness_latency_days FROM metrics.invoice_readiness "
                                            "WHERE is_invoiced AND readiness_latency_days IS NOT NULL")]
    (waiting_past,) = w.query("SELECT count(*) FROM metrics.invoice_readiness WHERE NOT is_invoiced AND is_ready "
                              "AND waiting_days > 16")[0]
    m = readiness.metadata
    assert m["target_days"].value == 16 and m["measured"].value == len(latency) > 0
    assert m["median_days"].value == pytest.approx(nearest_rank(latency, 0.5))
    assert m["p90_days"].value == pytest.approx(nearest_rank(latency, 0.9))
    assert m["share_within_target"].value == pytest.approx(sum(d <= 16 for d in latency) / len(latency), abs=1e-4)
    assert m["waiting_past_target"].value == waiting_past

    # the small firm's deals and time waiting for months fail the default objectives, at WARN
    assert late_waiters and float(longest) > 28
    assert not activation.passed and activation.severity == dg.AssetCheckSeverity.WARN
    assert "waiting longer than 28 days" in activation.description
    assert "| deal | customer |" in activation.metadata["waiting_past_target_items"].value
    assert not readiness.passed and readiness.metadata["waiting_past_max_wait"].value > 0

    thresholds_file(tmp_path, "[sla.project_activation]\nobjective = 0.9\nmax_wait_days = 1000\n"
                              "[sla.invoice_readiness]\nobjective = 1.0\nmax_wait_days = 1000\n", monkeypatch)
    relaxed = checks_of(run(dg.AssetSelection.checks(business_slas)))
    assert relaxed[(ACTIVATIONS_KEY.to_user_string(), ACTIVATION_CHECK)].passed
    share = relaxed[(READINESS_KEY.to_user_string(), READINESS_CHECK)].metadata["share_within_target"].value
    assert relaxed[(READINESS_KEY.to_user_string(), READINESS_CHECK)].passed is (share >= 1.0)


# --- freshness --------------------------------------------------------------------------------


def freshness(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, dg.AssetCheckEvaluation]]:
    out: dict[str, dict[str, dg.AssetCheckEvaluation]] = {}
    for (asset, name), check in checks_of(result).items():
        assert name == FRESHNESS_CHECK
        _, system, table = asset.split("/")
        out.setdefault(system, {})[table] = check
    return out


def age_stripe_syncs(w: Firm, hours: int) -> None:
    """Move Stripe's loads and recorded syncs `hours` into the past."""
    w.execute(f"UPDATE raw_stripe._dlt_loads SET inserted_at = inserted_at - INTERVAL {hours} HOUR")
    w.execute(f"UPDATE {SYNCS_TABLE} SET synced_at = synced_at - INTERVAL {hours} HOUR WHERE system = 'stripe'")


def test_freshness_fails_for_a_source_last_loaded_longer_ago_than_its_target(
        w: Firm, monkeypatch: pytest.MonkeyPatch) -> None:
    selection = dg.AssetSelection.checks(*FRESHNESS_CHECKS)
    fresh = freshness(run(selection))
    assert set(fresh) == {"hubspot", "stripe", "harvest", "erp"}
    assert all(c.passed for system in fresh.values() for c in system.values()), "the firm was loaded minutes ago"
    invoices = fresh["stripe"]["invoices"].metadata
    assert invoices["target_hours"].value == 3 and invoices["hours_since_sync"].value < 3

    age_stripe_syncs(w, hours=30)
    stale = freshness(run(selection))
    assert not any(c.passed for c in stale["stripe"].values())
    assert {c.severity for c in stale["stripe"].values()} == {dg.AssetCheckSeverity.WARN}
    assert 30 <= stale["stripe"]["invoices"].metadata["hours_since_sync"].value < 31
    assert "older than its 3 h target" in stale["stripe"]["invoices"].description
    assert all(c.passed for system in ("hubspot", "harvest", "erp") for c in stale[system].values())

    monkeypatch.setenv("CONCORD_FRESHNESS_STRIPE_HOURS", "48")
    assert all(c.passed for c in freshness(run(selection))["stripe"].values())

    monkeypatch.delenv("CONCORD_FRESHNESS_STRIPE_HOURS")
    monkeypatch.setenv("CONCORD_FRESHNESS_HOURS", "0")
    assert not any(c.passed for system in freshness(run(selection)).values() for c in system.values())


def test_a_materialisation_dagster_recorded_counts_for_its_table(w: Firm) -> None:
    """A sync Dagster recorded counts for its table, though the warehouse says otherwise."""
    age_stripe_syncs(w, hours=30)
    invoices = dg.AssetKey(["raw", "stripe", "invoices"])
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=invoices))
        stripe = freshness(run(dg.AssetSelection.checks(*FRESHNESS_CHECKS), instance=instance))["stripe"]
    assert stripe["invoices"].passed and "Dagster materialisation" in stripe["invoices"].description
    assert stripe["invoices"].metadata["last_materialised_at"].value > dt.datetime.now().timestamp() - 600
    assert not stripe["charges"].passed, "dlt's load moment is the system's; a materialisation is the table's"
