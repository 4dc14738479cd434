"""The reconciliation report as a Dagster asset: `reports/reconciliation_report`, the page finance
operations work from, written after the marts it reads are built.

The page goes to `CONCORD_REPORT_DIR` (default `<warehouse dir>/reports`): the latest as
`reconciliation_report.html`, each run's copy under `archive/`. The materialisation links to it
(`report`, `report_url`) and carries the headline: open exceptions, amount at risk, and the
exceptions by type as a markdown table.

It depends on the tables it reads (exceptions, their history, customers, the SLA metrics and
AR aging), not on the CRM pushes: the report reads nothing a push writes (the CRM's stale
financial statuses are judged by dbt from what was last ingested from HubSpot, so a push shows
in the report after the next load and build, whether or not the report waits for it), and
depending on the pushes would skip the report whenever HubSpot rejected a record or was down,
which is when finance most needs it.

Pool `warehouse`: `write_report` appends a row per exception type to
`reporting.reconciliation_report_runs` (the trend history) under the writers' lock.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import get_asset_key_for_model

from ingestion.warehouse import warehouse_path
from orchestration.dbt_assets import dbt_models
from orchestration.reconciliation_report import HISTORY_TABLE, write_report

REPORT_KEY = dg.AssetKey(["reports", "reconciliation_report"])
REPORT_DIR_ENV = "CONCORD_REPORT_DIR"
# the marts the page reads, in the order of its sections
REPORT_MODELS = ("reconciliation_exceptions", "reconciliation_exception_history", "customers", "project_activations",
                 "invoice_readiness", "receivable_balances")


def report_dir() -> Path:
    """`CONCORD_REPORT_DIR`, else `reports/` beside the warehouse."""
    configured = os.environ.get(REPORT_DIR_ENV)
    return Path(configured).resolve() if configured else warehouse_path().parent / "reports"


@dg.asset(
    key=REPORT_KEY, group_name="reports", kinds={"html"}, pool="warehouse",
    deps=[get_asset_key_for_model([dbt_models], model) for model in REPORT_MODELS],
    metadata={"report_dir": f"${REPORT_DIR_ENV}, else <warehouse dir>/reports", "history_table": HISTORY_TABLE},
)
def reconciliation_report() -> dg.MaterializeResult:
    """The reconciliation report for finance operations: open exceptions by type, owner and age,
    the largest first, their trend across runs, and the SLA charts, as one self-contained HTML
    page (`report_url` opens it). Written after every build of the marts it reads."""
    started = time.perf_counter()
    warehouse = warehouse_path()
    try:
        result = write_report(warehouse, report_dir())
    except duckdb.CatalogException as exc:
        raise dg.Failure(description=f"the report reads marts that are not in {warehouse}: build them first "
                                     f"(`concord run`): {exc}", allow_retries=False) from exc
    report = result.report
    metadata = {
        "report": dg.MetadataValue.path(str(result.path)),
        "report_url": dg.MetadataValue.url(result.path.as_uri()),
        "archived_report": dg.MetadataValue.path(str(result.archive_path)),
        "exceptions": dg.MetadataValue.int(result.exceptions),
        "amount_at_risk": dg.MetadataValue.float(round(result.amount_at_risk, 2)),
        "reporting_currency": dg.MetadataValue.text(result.reporting_currency),
        "customers_affected": dg.MetadataValue.int(report.customers_affected),
        "exceptions_by_type": dg.MetadataValue.md(result.markdown),
        "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
    }
    if report.as_of is not None:
        metadata["as_of"] = dg.MetadataValue.text(f"{report.as_of:%Y-%m-%d %H:%M} UTC")
    return dg.MaterializeResult(metadata=metadata)


REPORT_ASSETS = [reconciliation_report]
