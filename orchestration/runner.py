"""`concord run`: materialise the asset graph (or a selection of it) in this process."""

from __future__ import annotations

import warnings

import dagster as dg

from orchestration.definitions import ASSETS, RESOURCES


def materialize(selection: str = "*", log_level: str = "INFO") -> dg.ExecuteInProcessResult:
    """Run the selected assets in-process, in dependency order, logging progress to the console.

    Args:
        selection: Dagster's asset selection syntax, e.g. `*`, `group:harvest`,
            `key:raw/stripe/invoices`, `key:raw/erp/*`.
        log_level: the console logger's level.
    """
    warnings.filterwarnings("ignore", message="Parameter `include_sources`", category=dg.BetaWarning)
    instance = dg.DagsterInstance.get() if _has_home() else dg.DagsterInstance.ephemeral()
    return dg.materialize(
        ASSETS, selection=selection, instance=instance, resources=RESOURCES, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )


def _has_home() -> bool:
    import os

    return bool(os.environ.get("DAGSTER_HOME"))
