"""dbt at scale: a full `dbt build` of the loaded firm, then a rebuild after one simulated day.

Both are `dbt build` as Dagster runs it (the CLI, one process, every model, seed, snapshot and
test), on the same warehouse, in the same run; the rebuild follows `sandbox advance --days 1`
and an incremental load. It must not cost more than the first build.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.harness import Report
from ingestion.warehouse import SYSTEMS, run_source
from sandbox.lifecycle import advance

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"


def dbt_build(env: dict[str, str], *args: str) -> float:
    """`dbt build` of the whole project by the CLI, as Dagster runs it (plus `args`); its wall seconds."""
    started = time.perf_counter()
    done = subprocess.run(["dbt", "build", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                           *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{done.stdout[-4000:]}")
    return elapsed


def sandbox_as_of(base_url: str) -> str:
    """The sandbox clock as `CONCORD_AS_OF` (`base_url`: the server, without a vendor prefix)."""
    now_ms = requests.get(f"{base_url}/_sandbox/health", timeout=10).json()["now_ms"]
    return dt.datetime.fromtimestamp(now_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def load_all(warehouse: Path) -> None:
    """Load every system into `warehouse` (the sources read the server from the environment)."""
    for system in SYSTEMS:
        run_source(importlib.import_module(f"ingestion.{system}").source(), system, warehouse)


def run(report: Report, data_dir: Path, scale: str) -> None:
    from orchestration.demo import start_server

    process, settings = start_server(data_dir)
    base_url = settings["SOURCES__HUBSPOT__BASE_URL"].rsplit("/", 1)[0]
    with tempfile.TemporaryDirectory(prefix="dbt-bench-") as tmp:
        warehouse = Path(tmp) / "warehouse.duckdb"
        env = {**os.environ, **settings, "CONCORD_WAREHOUSE": str(warehouse),
               "DBT_TARGET_PATH": str(Path(tmp) / "target"), "DBT_LOG_PATH": str(Path(tmp) / "logs"),
               "PATH": f"{Path(os.sys.executable).parent}:{os.environ.get('PATH', '')}"}
        saved = dict(os.environ)
        try:
            os.environ.update(settings)
            load_all(warehouse)
            first = dbt_build({**env, "CONCORD_AS_OF": sandbox_as_of(base_url)})
            advance(data_dir, 1)
            load_all(warehouse)
            again = dbt_build({**env, "CONCORD_AS_OF": sandbox_as_of(base_url)})
        finally:
            os.environ.clear()
            os.environ.update(saved)
            process.terminate()
            process.wait(timeout=10)
    name = f"dbt build ({scale})"
    report.add(name, "first build", first, "s")
    report.add(name, "rebuild after one simulated day", again, "s")
    report.add(name, "rebuild / first build", again / first, "ratio", note="must not exceed 1")
