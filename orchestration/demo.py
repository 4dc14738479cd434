"""`make demo`: the small firm generated, its systems served, each one shown answering, then
the pipeline run end to end against it through Dagster: a first load, three days of activity, an
incremental one; then a short summary of what landed, what is broken and what it costs, what the
CRM now shows, where the report is and how long each stage took.

The servers run as a separate `concord sandbox serve` process, exactly as an operator would run
them, and the demo reads its settings from what that process prints. The runs are recorded in a
Dagster instance inside the data dir (`<data dir>/dagster_home`), which `make ui` opens, so the UI
shows the demo's runs, materialisations and report. Each demo starts from an empty data dir.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import duckdb
import requests
from sqlalchemy import text

from sandbox import erp_schema
from sandbox import ground_truth
from sandbox.lifecycle import advance, generate

REPO = Path(__file__).resolve().parents[1]
# The repo's Dagster instance configuration (pools, run queue), copied into the demo's instance.
DAGSTER_YAML = REPO / ".dagster_home" / "dagster.yaml"
MARKER = ".concord-demo"  # marks a data dir the demo made, so it may wipe it
REPORT_KEY = ("reports", "reconciliation_report")
SLOWEST_STEPS = 4
TOP_TYPES = 5


def start_server(data_dir: Path, *options: str) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start `concord sandbox serve` on a free port; return it and the settings it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration", "sandbox", "serve", "--data-dir", str(data_dir), "--port", "0",
         *options],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    settings: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(settings) < 8 and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        name, _, value = line.strip().partition("=")
        settings[name] = value
    if len(settings) < 8:
        process.kill()
        raise RuntimeError("the sandbox server did not start; run `concord sandbox serve` to see why")
    return process, settings


def dagster_home(data_dir: Path) -> Path:
    """The Dagster instance of a demo data dir (created, with the repo's dagster.yaml, if missing)."""
    home = (data_dir / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if DAGSTER_YAML.exists() and not (home / "dagster.yaml").exists():
        shutil.copy(DAGSTER_YAML, home / "dagster.yaml")
    return home


def sandbox_clock(settings: dict[str, str]) -> str:
    """The sandbox's own "now", which dbt judges SLAs against (`CONCORD_AS_OF`)."""
    base = settings["SOURCES__HUBSPOT__BASE_URL"].rsplit("/", 1)[0]
    now_ms = requests.get(f"{base}/_sandbox/health", timeout=10).json()["now_ms"]
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now_ms / 1000))


def pipeline_environment(data_dir: Path, settings: dict[str, str]) -> dict[str, str]:
    """What the pipeline reads: the sandbox's settings, the warehouse, its clock, the Dagster instance."""
    return {**settings, "CONCORD_WAREHOUSE": str((data_dir / "warehouse.duckdb").resolve()),
            "CONCORD_AS_OF": sandbox_clock(settings), "DAGSTER_HOME": str(dagster_home(data_dir))}


def fresh_data_dir(data: Path) -> None:
    """Empty `data` for a new demo; refuse a non-empty dir the demo did not make."""
    if data.exists() and any(data.iterdir()):
        if not ((data / MARKER).exists() or (data / "sandbox.sqlite").exists()):
            raise click.ClickException(f"{data} holds files the demo did not make; choose another --data-dir")
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    (data / MARKER).write_text("made by `concord demo`, which empties this directory each time it runs\n")


# --- what the demo shows while it runs -----------------------------------------------------------


def show_systems(settings: dict[str, str]) -> None:
    session = requests.Session()
    hubspot = session.get(f"{settings['SOURCES__HUBSPOT__BASE_URL']}/crm/v3/objects/companies",
                          params={"limit": 3, "properties": "name,domain,erp_customer_ref"},
                          headers={"Authorization": f"Bearer {settings['SOURCES__HUBSPOT__ACCESS_TOKEN']}"},
                          timeout=10).json()
    click.echo("      HubSpot  companies: " + "; ".join(r["properties"]["name"] for r in hubspot["results"]) + " ...")
    stripe = session.get(f"{settings['SOURCES__STRIPE__BASE_URL']}/v1/invoices", params={"limit": 3},
                         headers={"Authorization": f"Bearer {settings['SOURCES__STRIPE__API_KEY']}"},
                         timeout=10).json()
    click.echo("      Stripe   invoices: " + "; ".join(
        f"{i['number'] or i['id']} {i['status']} {i['total'] / 100:,.2f} {i['currency'].upper()}"
        for i in stripe["data"]) + " ...")
    harvest = session.get(f"{settings['SOURCES__HARVEST__BASE_URL']}/time_entries", params={"per_page": 1},
                          headers={"Authorization": f"Bearer {settings['SOURCES__HARVEST__ACCESS_TOKEN']}",
                                   "Harvest-Account-Id": settings["SOURCES__HARVEST__ACCOUNT_ID"],
                                   "User-Agent": "Concord demo (data@concord.example)"}, timeout=10).json()
    entry = harvest["time_entries"][0]
    click.echo(f"      Harvest  time entries: {harvest['total_entries']:,}, latest {entry['spent_date']} "
               f"{entry['hours']} h on {entry['project']['name']}")
    engine = erp_schema.engine_for(settings["SOURCES__ERP__CREDENTIALS"])
    with engine.connect() as conn:
        partners = conn.execute(text("SELECT count(*) FROM res_partner WHERE customer_rank > 0")).scalar()
        open_ar = conn.execute(text(
            "SELECT c.name, count(*), sum(m.amount_residual) FROM account_move m "
            "JOIN res_currency c ON c.id = m.currency_id WHERE m.move_type = 'out_invoice' "
            "AND m.state = 'posted' AND m.amount_residual > 0 GROUP BY c.name ORDER BY c.name")).all()
    engine.dispose()
    click.echo(f"      ERP      customers: {partners}, open AR: "
               + ", ".join(f"{float(total):,.2f} {currency} ({n} invoices)" for currency, n, total in open_ar))


@dataclass
class RunSummary:
    """What one Dagster run of the whole graph did, read from its events."""

    title: str
    seconds: float
    started_at: dt.datetime
    rows: dict[str, int] = field(default_factory=dict)  # per system
    quarantined: int = 0
    models: int = 0
    sent: dict[str, int] = field(default_factory=dict)  # per CRM object
    checks: int = 0
    failed_checks: list[str] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)  # seconds per step
    report: str | None = None


def run_pipeline(title: str) -> RunSummary:
    """Materialise every asset in-process through Dagster, as `concord run` does, a line per step."""
    from orchestration.runner import dbt_log_path, materialize, step_durations

    started_at, started = dt.datetime.now(dt.timezone.utc), time.perf_counter()
    result = materialize("*", log_level="ERROR", dbt_output=dbt_log_path())
    summary = RunSummary(title, time.perf_counter() - started, started_at, steps=step_durations(result))
    if not result.success:
        raise click.ClickException(f"{title}: the run failed; see the lines above (and `make ui` for the run's log)")
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        path = event.asset_key.path
        if path[0] == "crm":
            summary.sent[path[1]] = metadata["sent"].value
        elif path[0] == "raw":
            summary.rows[path[1]] = summary.rows.get(path[1], 0) + metadata["rows_loaded"].value
            summary.quarantined += metadata["quarantined"].value
        elif tuple(path) == REPORT_KEY and "report" in metadata:
            summary.report = str(metadata["report"].value)
        else:
            summary.models += 1
    evaluations = result.get_asset_check_evaluations()
    summary.checks = len(evaluations)
    summary.failed_checks = sorted(f"{e.asset_check_key.asset_key.to_user_string()}:{e.check_name}"
                                   for e in evaluations if not e.passed)
    click.echo(f"      done in {summary.seconds:.1f} s: {sum(summary.rows.values()):,} rows loaded, "
               f"{summary.models} dbt models built, {sum(summary.sent.values()):,} CRM records sent; "
               f"{summary.checks - len(summary.failed_checks)}/{summary.checks} checks passed")
    return summary


# --- the summary at the end ----------------------------------------------------------------------


def sample_company(settings: dict[str, str]) -> dict[str, str] | None:
    """The HubSpot company with the most overdue, as the CRM API returns it after the pushes."""
    wanted = "name,financial_status,ar_balance,ar_overdue_amount,billing_currency"
    url: str | None = f"{settings['SOURCES__HUBSPOT__BASE_URL']}/crm/v3/objects/companies"
    params: dict[str, object] | None = {"limit": 100, "properties": wanted}
    headers = {"Authorization": f"Bearer {settings['SOURCES__HUBSPOT__ACCESS_TOKEN']}"}
    companies: list[dict] = []
    while url and len(companies) < 1000:
        page = requests.get(url, params=params, headers=headers, timeout=10).json()
        companies += [{"id": r["id"], **r["properties"]} for r in page["results"]]
        url, params = (page["paging"]["next"]["link"], None) if page.get("paging") else (None, None)
    with_status = [c for c in companies if c.get("financial_status")]

    def overdue(company: dict) -> float:
        try:
            return float(company.get("ar_overdue_amount") or 0)
        except ValueError:
            return 0.0

    return max(with_status, key=overdue, default=None)


def exceptions_by_type(warehouse: Path) -> list[tuple[str, int, float]]:
    """Open exceptions by type: count and amount at risk in the reporting currency, largest first."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "SELECT exception_type, count(*), coalesce(sum(amount_at_risk_reporting), 0) "
            "FROM reconciliation.reconciliation_exceptions GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1").fetchall()
    return [(kind, n, float(amount)) for kind, n, amount in rows]


def stale_sent_since(warehouse: Path, since: dt.datetime) -> int:
    """How many `crm_financial_status_stale` companies HubSpot has confirmed new values for since
    `since`. The exception is measured before a run's push, so these clear at the next sync."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "SELECT count(DISTINCT e.source_record_id) FROM reconciliation.reconciliation_exceptions e "
            "JOIN reverse_etl.confirmed_values c ON c.object_type = 'companies' AND c.record_id = e.source_record_id "
            "WHERE e.exception_type = 'crm_financial_status_stale' AND c.confirmed_at >= ?", [since]).fetchone()[0]


def valid_records_reported(warehouse: Path, truth_file: Path) -> int:
    """Exceptions whose subject is a messy-but-valid record of the ground truth and no fault's:
    what a reconciliation that mistakes mess for faults would report. Should be 0."""
    entries = ground_truth.read(truth_file)
    in_faults = {(r["system"], r["id"]) for e in ground_truth.faults(entries) for r in e["records"]}
    valid = {(r["system"], r["id"]) for e in ground_truth.valid(entries) for r in e["records"]} - in_faults
    with duckdb.connect(str(warehouse), read_only=True) as con:
        subjects = con.execute(
            "SELECT source_system, source_record_id FROM reconciliation.reconciliation_exceptions "
            "WHERE exception_type <> 'crm_financial_status_stale'").fetchall()
    return sum(1 for subject in subjects if subject in valid)


def _money(amount: float | str | None) -> str:
    try:
        return f"{float(amount):,.2f}"
    except (TypeError, ValueError):
        return "-"


def print_summary(data: Path, runs: list[RunSummary], stages: dict[str, float],
                  company: dict[str, str] | None, total_s: float, noise: dict[str, int] | None = None) -> None:
    from orchestration.reconciliation_report import project_vars

    warehouse = (data / "warehouse.duckdb").resolve()
    currency = project_vars().get("reporting_currency", "USD")
    click.echo("\nSummary")
    systems = sorted({system for run in runs for system in run.rows})
    for n, run in enumerate(runs):
        click.echo(f"  {'Landed (rows):' if n == 0 else '':18}{run.title.lower() + ':':17}"
                   + ", ".join(f"{s} {run.rows.get(s, 0):,}" for s in systems) + f"; {run.quarantined} quarantined")

    by_type = exceptions_by_type(warehouse)
    total = sum(amount for _, _, amount in by_type)
    click.echo(f"  Inconsistent:     {sum(n for _, n, _ in by_type)} open exceptions, {total:,.2f} {currency} "
               f"at risk (reporting currency); by type:")
    for kind, n, amount in by_type[:TOP_TYPES]:
        click.echo(f"    {kind:30} {n:4}  {amount:>14,.2f}")
    rest = by_type[TOP_TYPES:]
    if rest:
        click.echo(f"    {f'{len(rest)} more types':30} {sum(n for _, n, _ in rest):4}  "
                   f"{sum(a for _, _, a in rest):>14,.2f}")
    sent = stale_sent_since(warehouse, runs[-1].started_at) if runs and runs[-1].sent.get("companies") else 0
    if sent:
        click.echo(f"    {sent} crm_financial_status_stale pushed by this run (HubSpot confirmed): "
                   "the next sync clears them")
    if noise:
        reported = valid_records_reported(warehouse, data / "ground_truth.jsonl")
        click.echo("    messy but valid, served and not faults: " + ", ".join(f"{name} {n:,}" for name, n in noise.items())
                   + f"; {reported} of them reported")
    failed = [name.rpartition(":")[2] for name in runs[-1].failed_checks] if runs else []
    if failed:
        shown = ", ".join(failed[:2]) + (f" and {len(failed) - 2} more" if len(failed) > 2 else "")
        click.echo(f"    {len(failed)} of {runs[-1].checks} checks failed, none blocking: {shown}")

    objects = list(dict.fromkeys(name for run in runs for name in run.sent))
    for n, run in enumerate(runs):
        click.echo(f"  {'CRM (sent):' if n == 0 else '':18}{run.title.lower() + ':':17}"
                   + ", ".join(f"{name} {run.sent.get(name, 0):,}" for name in objects))
    if company is not None:
        unit = f" {company['billing_currency']}" if company.get("billing_currency") else ""
        click.echo(f"    HubSpot now shows {company.get('name')}: financial_status {company.get('financial_status')}, "
                   f"ar_balance {_money(company.get('ar_balance'))}{unit}, "
                   f"ar_overdue_amount {_money(company.get('ar_overdue_amount'))}{unit}")

    report = next((run.report for run in reversed(runs) if run.report), None)
    fallback = warehouse.parent / "reports" / "reconciliation_report.html"
    if report is None and fallback.exists():
        report = str(fallback)
    if report is not None:
        click.echo(f"  Report:           {report}")

    click.echo("  Time:             " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items())
               + f"; {total_s:.0f} s in all")
    for run in runs:
        slowest = sorted(run.steps.items(), key=lambda item: -item[1])[:SLOWEST_STEPS]
        click.echo(f"    slowest steps, {run.title.lower()}: "
                   + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in slowest))
    click.echo(f"  Logs:             dbt {warehouse.parent / 'warehouse.logs' / 'dbt.log'}; "
               f"Dagster runs {data.resolve() / 'dagster_home'}")
    click.echo("  Next:             make ui   (the Dagster UI on http://127.0.0.1:3000 with this firm served: "
               "lineage, these runs, the report)")


def run(data_dir: str) -> None:
    demo_started = time.perf_counter()
    data = Path(data_dir)
    stages: dict[str, float] = {}
    fresh_data_dir(data)

    click.echo(f"[1/5] Generating the small firm into {data} ...")
    summary = generate(data, scale="small", seed=1)
    stages["generate"] = summary.seconds
    click.echo(f"      {sum(summary.counts['harvest'].values()):,} PSA records, "
               f"{summary.counts['stripe']['invoices']:,} invoices, {summary.faults} injected faults "
               f"({summary.seconds:.1f} s)")
    if summary.noise:
        click.echo("      messy but valid: " + ", ".join(f"{name} {n:,}" for name, n in summary.noise.items()))
    noise = summary.noise

    started = time.perf_counter()
    process, settings = start_server(data)
    runs: list[RunSummary] = []
    company = None
    try:
        stages["serve"] = time.perf_counter() - started
        base = settings["SOURCES__HUBSPOT__BASE_URL"].rsplit("/", 1)[0]
        click.echo(f"[2/5] Sandbox serving on {base} (pid {process.pid}, {stages['serve']:.1f} s); it answers:")
        show_systems(settings)
        os.environ.update(pipeline_environment(data, settings))

        click.echo("[3/5] First run: every asset through Dagster, in-process (dbt's output goes to its log) ...")
        runs.append(run_pipeline("First run"))
        stages["first run"] = runs[-1].seconds

        click.echo("[4/5] Three days pass in the firm (concord sandbox advance --days 3) ...")
        started = time.perf_counter()
        noise = advance(data, 3).noise
        os.environ["CONCORD_AS_OF"] = sandbox_clock(settings)
        stages["advance"] = time.perf_counter() - started

        click.echo("[5/5] Incremental run ...")
        runs.append(run_pipeline("Incremental run"))
        stages["incremental run"] = runs[-1].seconds
        company = sample_company(settings)
    finally:
        process.terminate()
        process.wait(timeout=10)
    click.echo("Sandbox stopped.")
    print_summary(data, runs, stages, company, time.perf_counter() - demo_started, noise)
