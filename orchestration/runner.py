"""`concord run`: materialise the asset graph (or a selection of it) in this process."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Callable

import dagster as dg

from ingestion.warehouse import warehouse_path
from orchestration.definitions import ASSET_CHECKS, ASSETS, RESOURCES

JOB_NAME = "__ephemeral_asset_job__"  # the name `dg.materialize` gives its implicit job
PROGRESS_LOGGER = "concord_progress"


def dbt_log_path() -> Path:
    """Where dbt's own output goes during a run: beside the warehouse, not over the console."""
    warehouse = warehouse_path()
    return warehouse.parent / f"{warehouse.stem}.logs" / "dbt.log"


class _StepProgress(logging.Handler):
    """One line per finished step (`  raw_stripe done (3.1 s)`), from the run's own step events."""

    def __init__(self, echo: Callable[[str], None]):
        super().__init__(level=logging.DEBUG)
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
        if event is None or not event.is_step_event:
            return
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            self.echo(f"  {event.step_key} done ({event.event_specific_data.duration_ms / 1000:.1f} s)")
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.event_specific_data
            error = data.user_failure_data.description if data.user_failure_data else None
            error = error or (data.error.message.strip().splitlines()[-1] if data.error else "")
            self.echo(f"  {event.step_key} FAILED: {error}")
        elif event.event_type == dg.DagsterEventType.STEP_SKIPPED:
            self.echo(f"  {event.step_key} skipped (an upstream step failed or a blocking check did)")


def progress_logger(echo: Callable[[str], None]) -> dg.LoggerDefinition:
    """A Dagster logger that reports each step as it finishes, and nothing else, through `echo`."""

    @dg.logger(description="A line per finished step on the console.")
    def _progress(_context: dg.InitLoggerContext) -> logging.Logger:
        log = logging.Logger(PROGRESS_LOGGER, level=logging.DEBUG)  # outside the logging tree: no propagation
        log.addHandler(_StepProgress(echo))
        return log

    return _progress


def step_durations(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Seconds each successful step of the run took (Dagster's step start to step success)."""
    return {event.step_key: event.event_specific_data.duration_ms / 1000
            for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_SUCCESS}


def materialize(selection: str = "*", log_level: str = "INFO", dbt_output: Path | None = None,
                progress: bool = True) -> dg.ExecuteInProcessResult:
    """Run the selected assets in-process, in dependency order, logging progress to the console.

    What `dg.materialize` does, plus a logger that prints a line as each step finishes.

    Args:
        selection: Dagster's asset selection syntax, e.g. `*`, `group:harvest`,
            `key:raw/stripe/invoices`, `key:raw/erp/*`.
        log_level: the console logger's level.
        dbt_output: a file for dbt's event stream, which dagster-dbt writes to stdout line by line
            (hundreds of lines a build); None leaves it on stdout.
        progress: print `  <step> done (<seconds> s)` to stdout as each step finishes.
    """
    warnings.filterwarnings("ignore", message="Parameter `include_sources`", category=dg.BetaWarning)
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    console = sys.stdout  # the console as it is now, before dbt's output is redirected

    def echo(line: str) -> None:
        console.write(line + "\n")
        console.flush()

    loggers = {"console": dg.colored_console_logger, PROGRESS_LOGGER: progress_logger(echo)}
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    if progress:
        run_config["loggers"][PROGRESS_LOGGER] = {}
    defs = dg.Definitions(jobs=[dg.define_asset_job(JOB_NAME, selection=selection)], assets=[*ASSETS, *ASSET_CHECKS],
                          resources=RESOURCES, loggers=loggers)
    job = defs.resolve_job_def(JOB_NAME)
    with contextlib.ExitStack() as stack:
        if dbt_output is not None:
            dbt_output.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(dbt_output.open("a"))))
        return job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)
