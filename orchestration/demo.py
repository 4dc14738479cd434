"""`make demo`: the small firm generated, its systems served, each one shown answering, then
the pipeline run end to end against it: a first load, three days of activity, an incremental one.

The servers run as a separate `concord sandbox serve` process, exactly as an operator would run
them, and the demo reads its settings from what that process prints.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import duckdb
import requests
from sqlalchemy import text

from sandbox import erp_schema
from sandbox.lifecycle import advance, generate


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


def show_systems(settings: dict[str, str]) -> None:
    session = requests.Session()
    hubspot = session.get(f"{settings['SOURCES__HUBSPOT__BASE_URL']}/crm/v3/objects/companies",
                          params={"limit": 3, "properties": "name,domain,erp_customer_ref"},
                          headers={"Authorization": f"Bearer {settings['SOURCES__HUBSPOT__ACCESS_TOKEN']}"},
                          timeout=10).json()
    click.echo("HubSpot  companies: " + "; ".join(r["properties"]["name"] for r in hubspot["results"]) + " ...")
    stripe = session.get(f"{settings['SOURCES__STRIPE__BASE_URL']}/v1/invoices", params={"limit": 3},
                         headers={"Authorization": f"Bearer {settings['SOURCES__STRIPE__API_KEY']}"},
                         timeout=10).json()
    click.echo("Stripe   invoices: " + "; ".join(
        f"{i['number'] or i['id']} {i['status']} {i['total'] / 100:,.2f} {i['currency'].upper()}"
        for i in stripe["data"]) + " ...")
    harvest = session.get(f"{settings['SOURCES__HARVEST__BASE_URL']}/time_entries", params={"per_page": 1},
                          headers={"Authorization": f"Bearer {settings['SOURCES__HARVEST__ACCESS_TOKEN']}",
                                   "Harvest-Account-Id": settings["SOURCES__HARVEST__ACCOUNT_ID"],
                                   "User-Agent": "Concord demo (data@concord.example)"}, timeout=10).json()
    entry = harvest["time_entries"][0]
    click.echo(f"Harvest  time entries: {harvest['total_entries']:,}, latest {entry['spent_date']} "
               f"{entry['hours']} h on {entry['project']['name']}")
    engine = erp_schema.engine_for(settings["SOURCES__ERP__CREDENTIALS"])
    with engine.connect() as conn:
        partners = conn.execute(text("SELECT count(*) FROM res_partner WHERE customer_rank > 0")).scalar()
        open_ar = conn.execute(text(
            "SELECT c.name, count(*), sum(m.amount_residual) FROM account_move m "
            "JOIN res_currency c ON c.id = m.currency_id WHERE m.move_type = 'out_invoice' "
            "AND m.state = 'posted' AND m.amount_residual > 0 GROUP BY c.name ORDER BY c.name")).all()
    engine.dispose()
    click.echo(f"ERP      customers: {partners}, open AR: "
               + ", ".join(f"{float(total):,.2f} {currency} ({n} invoices)" for currency, n, total in open_ar))


def run_pipeline(title: str) -> None:
    """Materialise every asset in-process, as `concord run` does, and summarise it."""
    from orchestration.runner import dbt_log_path, materialize

    started = time.perf_counter()
    result = materialize("*", log_level="ERROR", dbt_output=dbt_log_path())
    if not result.success:
        raise click.ClickException(f"{title}: the run failed; see the log above")
    by_system: dict[str, int] = {}
    pushed: dict[str, int] = {}
    quarantined = models = 0
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        if event.asset_key.path[0] == "crm":
            pushed[event.asset_key.path[1]] = metadata["sent"].value
            continue
        if event.asset_key.path[0] != "raw":
            models += 1
            continue
        system = event.asset_key.path[1]
        by_system[system] = by_system.get(system, 0) + metadata["rows_loaded"].value
        quarantined += metadata["quarantined"].value
    checks = result.get_asset_check_evaluations() if hasattr(result, "get_asset_check_evaluations") else []
    failed = [c for c in checks if not c.passed]
    click.echo(f"{title} ({time.perf_counter() - started:.1f} s): "
               + ", ".join(f"{system} {rows:,} rows" for system, rows in by_system.items())
               + f"; {quarantined} quarantined; {models} dbt models built; sent to HubSpot: "
               + ", ".join(f"{name} {sent:,}" for name, sent in pushed.items())
               + f"; {len(checks) - len(failed)}/{len(checks)} checks passed")


def show_warehouse(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema LIKE 'raw_%' "
            "AND NOT ends_with(table_schema, '_staging') AND NOT starts_with(table_name, '_dlt') "
            "ORDER BY table_schema, table_name").fetchall()
        counts = {(schema, name): con.execute(f'SELECT count(*) FROM {schema}."{name}"').fetchone()[0]
                  for schema, name in tables}
    for schema in sorted({schema for schema, _ in tables}):
        click.echo(f"  {schema:12} " + ", ".join(f"{name} {n:,}" for (s, name), n in counts.items() if s == schema))


def show_exceptions(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'reconciliation' "
                             "AND table_name = 'reconciliation_exceptions'").fetchone()[0]
        if not exists:
            return
        rows = con.execute(
            "SELECT exception_type, count(*), sum(amount_at_risk_reporting) FROM reconciliation.reconciliation_exceptions "
            "GROUP BY 1 ORDER BY 3 DESC NULLS LAST, 1").fetchall()
    click.echo("Reconciliation exceptions (amount at risk in the reporting currency):")
    for kind, n, amount in rows:
        click.echo(f"  {kind:30} {n:5}  {float(amount or 0):>14,.2f}")


def sandbox_clock(settings: dict[str, str]) -> str:
    """The sandbox's own "now", which dbt judges SLAs against (`CONCORD_AS_OF`)."""
    base = settings["SOURCES__HUBSPOT__BASE_URL"].rsplit("/", 1)[0]
    now_ms = requests.get(f"{base}/_sandbox/health", timeout=10).json()["now_ms"]
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now_ms / 1000))


def run(data_dir: str) -> None:
    data = Path(data_dir)
    click.echo(f"Generating the small firm into {data} ...")
    summary = generate(data, scale="small", seed=1)
    click.echo(f"  {sum(summary.counts['harvest'].values()):,} PSA records, "
               f"{summary.counts['stripe']['invoices']:,} invoices, {summary.faults} injected faults "
               f"({summary.seconds:.1f} s)")
    warehouse = (data / "warehouse.duckdb").resolve()
    for leftover in warehouse.parent.glob(f"{warehouse.name}*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    shutil.rmtree(warehouse.parent / f"{warehouse.stem}.dlt", ignore_errors=True)
    process, settings = start_server(data)
    try:
        base = settings["SOURCES__HUBSPOT__BASE_URL"].rsplit("/", 1)[0]
        click.echo(f"Sandbox serving on {base} (pid {process.pid}); it answers:")
        show_systems(settings)
        os.environ.update(settings)
        os.environ["CONCORD_WAREHOUSE"] = str(warehouse)
        os.environ["CONCORD_AS_OF"] = sandbox_clock(settings)
        run_pipeline("First run")
        show_warehouse(warehouse)
        show_exceptions(warehouse)
        advance(data, 3)
        os.environ["CONCORD_AS_OF"] = sandbox_clock(settings)
        click.echo("Three days pass in the firm (concord sandbox advance --days 3) ...")
        run_pipeline("Incremental run")
        show_exceptions(warehouse)
    finally:
        process.terminate()
        process.wait(timeout=10)
    click.echo("Sandbox stopped.")
    click.echo(f"Warehouse: {warehouse} (dbt's log: {warehouse.parent / 'warehouse.logs' / 'dbt.log'})")
    click.echo(f"Sandbox state: {data.resolve()} (sandbox.sqlite, erp.sqlite); injected faults: "
               f"{(data / 'ground_truth.jsonl').resolve()}")
    click.echo(f"Serve it again: concord sandbox serve --data-dir {data}")
