"""Where ingestion lands data and how a load is run: one DuckDB file, one writer at a time,
interrupted loads finished before new ones start.

`CONCORD_WAREHOUSE` names the DuckDB file that dlt, dbt and reverse ETL all use (default
`data/warehouse.duckdb`). Each system lands in its own dataset, `raw_<system>`, through its own
dlt pipeline `concord_<system>`, whose working state lives beside the warehouse file.

Every successful run is also recorded in `ingestion.source_syncs`, because dlt writes no load
(`_dlt_loads`) when a source had nothing new: a quiet source is still a current one.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
import duckdb
from dlt.common.pipeline import LoadInfo
from dlt.extract.source import DltSource
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion.http import SourceError
from ingestion.quarantine import QUARANTINE_TABLE

WAREHOUSE_ENV = "CONCORD_WAREHOUSE"
SYNCS_TABLE = "ingestion.source_syncs"
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
SYSTEMS = ("hubspot", "stripe", "harvest", "erp")

logger = logging.getLogger("concord.ingestion")


def warehouse_path() -> Path:
    return Path(os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE).resolve()


def pipelines_dir(warehouse: Path | None = None) -> Path:
    """dlt's working dirs, beside the warehouse they belong to (never ~/.dlt)."""
    warehouse = warehouse or warehouse_path()
    return warehouse.parent / f"{warehouse.stem}.dlt"


def make_pipeline(system: str, warehouse: Path | None = None) -> dlt.Pipeline:
    warehouse = warehouse or warehouse_path()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=f"concord_{system}",
        destination=dlt.destinations.duckdb(str(warehouse)),
        dataset_name=f"raw_{system}",
        pipelines_dir=str(pipelines_dir(warehouse)),
    )


class FileLock:
    """An exclusive lock on a file beside the warehouse, waited for up to `timeout_s`; the OS
    releases it if the holder dies, so a killed process never blocks the next."""

    holder = "another process"

    def __init__(self, path: Path, timeout_s: float):
        self.path = path
        self.timeout_s = timeout_s
        self._handle: Any = None

    def __enter__(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a+")  # noqa: SIM115 - held until __exit__
        deadline = time.monotonic() + self.timeout_s
        waited = False
        while True:
            try:
                fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if not waited:
                    logger.info("waiting for %s to release %s", self.holder, self.path)
                    waited = True
                if time.monotonic() > deadline:
                    self._handle.close()
                    raise self.timed_out() from None
                time.sleep(0.2)

    def timed_out(self) -> Exception:
        return TimeoutError(f"{self.holder} has held {self.path} for over {self.timeout_s:.0f} s")

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


class WriterLock(FileLock):
    """An exclusive lock on the warehouse file, held for the whole of a load.

    DuckDB admits one writing process; two loads started by a schedule and an operator at
    once would otherwise fail half-way.
    """

    holder = "another writer"

    def __init__(self, warehouse: Path, timeout_s: float = 3600.0):
        super().__init__(warehouse.with_name(warehouse.name + ".lock"), timeout_s)


def open_read_write(warehouse: Path, patience_s: float = 60.0) -> duckdb.DuckDBPyConnection:
    """The warehouse, read-write, for a caller holding the `WriterLock`; a process that holds the
    file without taking the lock (a dbt build started by hand) is waited for, a while."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return duckdb.connect(str(warehouse))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.25)


@dataclass
class LoadReport:
    """What one run of a source did."""

    system: str
    row_counts: dict[str, int] = field(default_factory=dict)
    resumed_row_counts: dict[str, int] = field(default_factory=dict)  # known if it was not yet normalised
    quarantined_by_table: dict[str, int] = field(default_factory=dict)
    load_ids: list[str] = field(default_factory=list)
    resumed: bool = False  # an interrupted earlier load was finished first
    seconds: float = 0.0

    @property
    def quarantined(self) -> int:
        return self.row_counts.get(QUARANTINE_TABLE, 0) + self.resumed_row_counts.get(QUARANTINE_TABLE, 0)


    def rows(self, table: str) -> int:
        """Rows landed in `table` by this run, a resumed load included (child tables not counted)."""
        return self.row_counts.get(table, 0) + self.resumed_row_counts.get(table, 0)


def _row_counts(pipeline: dlt.Pipeline) -> dict[str, int]:
    trace = pipeline.last_trace
    normalize = trace.last_normalize_info if trace else None
    if normalize is None:
        return {}
    return {table: n for table, n in normalize.row_counts.items() if not table.startswith("_dlt")}


def run_source(source: DltSource, system: str, warehouse: Path | None = None) -> LoadReport:
    """Load `source` into `raw_<system>`, first finishing any load a crash left behind.

    dlt keeps extracted and normalised packages that were not loaded; `pipeline.run()` with no
    data loads them and stops. Running that first is what makes a killed load resume with
    nothing lost and nothing doubled (merge dedupes what was loaded twice).
    """
    try:
        return _run(source, system, warehouse or warehouse_path())
    except PipelineStepFailed as failure:
        cause = _source_error(failure)
        if cause is not None:
            raise cause from failure
        raise


def _source_error(failure: BaseException) -> SourceError | None:
    """The `SourceError` behind dlt's wrapping, whose message says what to fix."""
    seen: BaseException | None = failure
    while seen is not None:
        if isinstance(seen, SourceError):
            return seen
        seen = getattr(seen, "exception", None) or seen.__cause__ or seen.__context__
    return None


def _run(source: DltSource, system: str, warehouse: Path) -> LoadReport:
    started = time.perf_counter()
    pipeline = make_pipeline(system, warehouse)
    report = LoadReport(system)
    logger.info("%s: loading %s into %s", system, ", ".join(source.selected_resources), warehouse)
    with WriterLock(warehouse):
        if pipeline.has_pending_data:
            logger.warning("%s: finishing a load interrupted earlier", system)
            report.resumed = True
            info = pipeline.run()
            _check(info, system)
            report.resumed_row_counts = _row_counts(pipeline)
            report.load_ids += list(info.loads_ids) if info else []
        pipeline.extract(source, loader_file_format="parquet")
        _crash_point("extract")
        pipeline.normalize()
        report.row_counts = _row_counts(pipeline)
        _crash_point("normalize")
        info = pipeline.load()
        _check(info, system)
        report.load_ids += list(info.loads_ids)
        if report.quarantined:
            report.quarantined_by_table = _quarantined_by_table(warehouse, system, report.load_ids)
        _record_sync(warehouse, report)
    report.seconds = time.perf_counter() - started
    logger.info("%s: loaded %s in %.1f s (%d quarantined)", system, report.row_counts, report.seconds,
                report.quarantined)
    return report


CRASH_ENV = "CONCORD_CRASH_AFTER"


def _crash_point(step: str) -> None:
    """Die the hard way after `step` when asked to: how tests interrupt a load at a known point
    (`CONCORD_CRASH_AFTER=extract` or `normalize`), exactly as a kill -9 would."""
    if os.environ.get(CRASH_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _record_sync(warehouse: Path, report: LoadReport) -> None:
    rows = sum(report.row_counts.values()) + sum(report.resumed_row_counts.values())
    with open_read_write(warehouse) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS ingestion")
        con.execute(f"CREATE TABLE IF NOT EXISTS {SYNCS_TABLE} (system VARCHAR NOT NULL, synced_at TIMESTAMPTZ "
                    "NOT NULL, rows_landed BIGINT NOT NULL, load_ids VARCHAR[] NOT NULL)")
        con.execute(f"INSERT INTO {SYNCS_TABLE} VALUES (?, ?, ?, ?)",
                    [report.system, dt.datetime.now(dt.timezone.utc), rows, report.load_ids])


def last_synced(con: duckdb.DuckDBPyConnection, system: str) -> dt.datetime | None:
    """When `system` was last synced successfully (UTC): its newest successful dlt load, or a later
    run that found nothing new; None if never."""
    moments = []
    if _has_table(con, f"raw_{system}", "_dlt_loads"):
        moments += con.execute(f"SELECT max(inserted_at) FROM raw_{system}._dlt_loads WHERE status = 0").fetchone()
    if _has_table(con, *SYNCS_TABLE.split(".")):
        moments += con.execute(f"SELECT max(synced_at) FROM {SYNCS_TABLE} WHERE system = ?", [system]).fetchone()
    return max((m.replace(tzinfo=dt.timezone.utc) if m.tzinfo is None else m.astimezone(dt.timezone.utc)
                for m in moments if m is not None), default=None)


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                       [schema, table]).fetchone()[0] > 0


def _quarantined_by_table(warehouse: Path, system: str, load_ids: list[str]) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            f"SELECT source_table, count(*) FROM raw_{system}.{QUARANTINE_TABLE} "
            f"WHERE _dlt_load_id IN (SELECT unnest(?)) GROUP BY source_table", [load_ids]).fetchall()
    return dict(rows)


def _check(info: LoadInfo | None, system: str) -> None:
    if info is not None:
        info.raise_on_failed_jobs()
