"""`concord run`: materialise the asset graph (or a selection of it) in this process."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import dagster as dg

from ingestion.warehouse import warehouse_path
from orchestration.definitions import ASSET_CHECKS, ASSETS, RESOURCES


def dbt_log_path() -> Path:
    """Where dbt's own output goes during a run: beside the warehouse, not over the console."""
    warehouse = warehouse_path()
    return warehouse.parent / f"{warehouse.stem}.logs" / "dbt.log"


def materialize(selection: str = "*", log_level: str = "INFO", dbt_output: Path | None = None
                ) -> dg.ExecuteInProcessResult:
    """Run the selected assets in-process, in dependency order, logging progress to the console.

    Args:
        selection: Dagster's asset selection syntax, e.g. `*`, `group:harvest`,
            `key:raw/stripe/invoices`, `key:raw/erp/*`.
        log_level: the console logger's level.
        dbt_output: a file for dbt's event stream, which dagster-dbt writes to stdout line by line
            (hundreds of lines a build); None leaves it on stdout.
    """
    warnings.filterwarnings("ignore", message="Parameter `include_sources`", category=dg.BetaWarning)
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    redirect: contextlib.AbstractContextManager = contextlib.nullcontext()
    if dbt_output is not None:
        dbt_output.parent.mkdir(parents=True, exist_ok=True)
        redirect = contextlib.redirect_stdout(dbt_output.open("a"))
    with redirect:
        return dg.materialize(
            [*ASSETS, *ASSET_CHECKS], selection=selection, instance=instance, resources=RESOURCES,
            raise_on_error=False, run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
