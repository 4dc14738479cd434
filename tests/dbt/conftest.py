"""A warehouse loaded from the sandbox firm by the real sources, and dbt run against it.

dbt runs in-process (`dbtRunner`): each CLI start would cost about two seconds.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import requests
from dbt.cli.main import dbtRunner, dbtRunnerResult

from ingestion.warehouse import SYSTEMS, run_source
from sandbox.lifecycle import generate
from sandbox.server.app import RunningServer

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


@dataclass
class Warehouse:
    """A sandbox firm, served, and the warehouse its systems were loaded into."""

    data_dir: Path
    path: Path
    server: RunningServer

    @property
    def as_of(self) -> str:
        """The sandbox clock, as dbt's `CONCORD_AS_OF` wants it."""
        now_ms = requests.get(f"{self.server.base_url}/_sandbox/health", timeout=10).json()["now_ms"]
        return dt.datetime.fromtimestamp(now_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")

    def env(self) -> dict[str, str]:
        return {**self.server.client_settings(), "CONCORD_WAREHOUSE": str(self.path), "CONCORD_AS_OF": self.as_of}

    def ingest(self) -> None:
        import importlib

        with _environ(self.env()):
            for system in SYSTEMS:
                run_source(importlib.import_module(f"ingestion.{system}").source(), system, self.path)

    def dbt(self, *args: str) -> dbtRunnerResult:
        """Run a dbt command against this warehouse; raises with dbt's own messages on failure."""
        env = {**self.env(), "DBT_TARGET_PATH": str(self.path.parent / "dbt_target"),
               "DBT_LOG_PATH": str(self.path.parent / "dbt_logs")}
        with _environ(env):
            try:
                result = dbtRunner().invoke([*args, "--project-dir", str(PROJECT_DIR),
                                             "--profiles-dir", str(PROJECT_DIR)])
            finally:
                _release_duckdb()
        if not result.success:
            failures = [f"{r.node.unique_id}: {r.message}" for r in (result.result or []) if r.status in
                        ("error", "fail")] if hasattr(result.result, "__iter__") else [str(result.exception)]
            raise AssertionError(f"dbt {' '.join(args)} failed:\n" + "\n".join(failures[:20]))
        return result

    def build_models(self, *args: str) -> dbtRunnerResult:
        """`dbt build` without the data and unit tests: seeds, models and snapshots, for tests
        that need the tables but not another run of the project's own tests."""
        return self.dbt("build", "--exclude", "resource_type:test", "resource_type:unit_test", *args)

    def query(self, sql: str, *params) -> list[tuple]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            return con.execute(sql, params).fetchall()


def _release_duckdb() -> None:
    """dbt-duckdb keeps its DuckDB connection open in the process after a command; close it so
    the test (or the next loader) can open the file. (Tests only: a private handle of the adapter.)"""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


class _environ:
    def __init__(self, values: dict[str, str]):
        self.values, self.saved = values, {}

    def __enter__(self) -> None:
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_warehouse(root: Path, *, scale: str = "small", seed: int = 9, as_of: str = "2026-10-01",
                    fault_rate: float | None = None, noise_rates: dict[str, float] | None = None
                    ) -> Iterator[Warehouse]:
    from sandbox.world.config import fault_rates

    data_dir = root / "sandbox"
    generate(data_dir, scale=scale, seed=seed, as_of=as_of,
             fault_rates=fault_rates(fault_rate) if fault_rate is not None else None, noise_rates=noise_rates)
    with RunningServer(data_dir) as server:
        warehouse = Warehouse(data_dir, root / "warehouse.duckdb", server)
        warehouse.ingest()
        yield warehouse


def copy_of(warehouse: Warehouse, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(warehouse.path, target / "warehouse.duckdb")
    return target / "warehouse.duckdb"


@contextmanager
def served_copy(firm: Warehouse, root: Path) -> Iterator[Warehouse]:
    """A copy of a firm (sandbox state, warehouse, dlt state) under `root`, served by its own
    sandbox server: a test that writes to the sandbox or the warehouse starts from the built
    firm without loading and building one of its own."""
    data_dir = root / "sandbox"
    data_dir.mkdir(parents=True)
    for source in firm.data_dir.iterdir():
        if source.suffix == ".sqlite":  # served while we copy: through SQLite's backup API
            with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(data_dir / source.name)) as dst:
                src.backup(dst)
        elif source.is_file() and not source.name.endswith(("-wal", "-shm", "-journal")):
            shutil.copy(source, data_dir / source.name)
    path = copy_of(firm, root)
    dlt_dir = firm.path.parent / f"{firm.path.stem}.dlt"
    if dlt_dir.exists():
        shutil.copytree(dlt_dir, root / f"{path.stem}.dlt")
    with RunningServer(data_dir) as server:
        yield Warehouse(data_dir, path, server)
