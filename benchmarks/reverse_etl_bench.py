"""Reverse ETL at scale: write calls per changed record, and records/s against the rate budget.

All pushes go to a sandbox HubSpot with its rate limits on (HubSpot's own: 190 requests per
rolling 10 s, the professional tier), through `reverse_etl.push` with the default settings
unless a figure says otherwise. Three measurements, on copies of one loaded and built firm:

- First push: companies then deals into a CRM nothing has written to (property setup included).
  Records sent, write calls (batch updates), requests, wall time, records/s, and records/s as a
  share of the ceiling the budget allows: `rate_limit / rate_window_s × batch_size`.
- Steady state: the firm one simulated day later (`sandbox advance --days 1`, an incremental
  load, `dbt build` of the models), pushed after the first push: changed records, write calls per changed
  record (ideally 1 / batch size) and every request, property reads included.
- Budget-bound (medium only): a first push with a small batch size, so its requests are a few
  times the budget and the budget is the physical limit: records/s against the ceiling, the
  busiest rolling window the server saw (from its request log) and the 429s the client got.
  Beside it, the same batches sent by the HTTP client alone (`HubSpotClient.batch_update`, no
  warehouse bookkeeping): the rate the budget permits a client that does nothing else.

First pushes and steady-state pushes are medians of `repeats` runs, each on its own copy of the
firm and its own server; the budget-bound pair runs once (it takes over a minute at medium).
The firm is built by `dbt build` without its data and unit tests (`DBT_ARGS`): the same tables.
"""

from __future__ import annotations

import bisect
import math
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import requests

from benchmarks.dbt_bench import dbt_build, load_all, sandbox_as_of
from benchmarks.harness import Report
from sandbox.lifecycle import advance

OBJECT_TYPES = ("companies", "deals")
SCALES = ("small", "medium")  # large: ten times medium's records, minutes per first push
BUDGET_BOUND_SCALES = ("medium",)  # small has fewer requests than one window's budget
BUDGET_BATCH_SIZE = 10
# Every model, seed and snapshot, as the full build makes them, without the data and unit tests:
# the dbt bench times those, and here they would be a third of the setup.
DBT_ARGS = ("--exclude", "resource_type:test", "resource_type:unit_test")


# -- firms and their servers ----------------------------------------------------------------------

def copy_sandbox(source: Path, target: Path) -> None:
    """Copy a sandbox data dir (its SQLite files through SQLite's backup, so a served one copies whole)."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix == ".sqlite":
            with sqlite3.connect(path) as src, sqlite3.connect(target / path.name) as dst:
                src.backup(dst)
        elif path.is_file():
            shutil.copy(path, target / path.name)


def copy_firm(source: Path, target: Path) -> Path:
    """Copy a firm (`sandbox/`, `warehouse.duckdb` and dlt's state beside it) to `target`."""
    copy_sandbox(source / "sandbox", target / "sandbox")
    if (source / "warehouse.duckdb").exists():
        shutil.copy(source / "warehouse.duckdb", target / "warehouse.duckdb")
    if (source / "warehouse.dlt").exists():
        shutil.copytree(source / "warehouse.dlt", target / "warehouse.dlt")
    return target


@dataclass
class Served:
    """A firm copy served by its own `concord sandbox serve` process."""

    root: Path
    settings: dict[str, str]

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def base_url(self) -> str:
        return self.settings["SOURCES__HUBSPOT__BASE_URL"].rsplit("/", 1)[0]

    @property
    def admin(self) -> str:
        return f"{self.base_url}/_sandbox"

    def env(self) -> dict[str, str]:
        """What reverse ETL reads: the portal, the warehouse, and no operator knobs."""
        return {**self.settings, "CONCORD_WAREHOUSE": str(self.warehouse)}

    def rate_limits(self, on: bool) -> None:
        requests.put(f"{self.admin}/settings", json={"rate_limits": on}, timeout=10).raise_for_status()

    def reset_requests(self) -> None:
        requests.delete(f"{self.admin}/stats", timeout=10).raise_for_status()

    def hubspot_requests(self) -> dict[str, int]:
        return requests.get(f"{self.admin}/stats", timeout=10).json().get("hubspot", {})

    def arrivals(self) -> list[float]:
        """When each HubSpot request since the last reset arrived (epoch seconds, sorted)."""
        log = requests.get(f"{self.admin}/requests", timeout=30).json()["requests"]
        return sorted(r["t"] for r in log if r["system"] == "hubspot")

    def load_and_build(self) -> None:
        """Incremental (or first) load of every system, then `dbt build` of the models (`DBT_ARGS`)."""
        with _environ(self.env()):
            load_all(self.warehouse)
        dbt_build({**os.environ, **self.env(), "CONCORD_AS_OF": sandbox_as_of(self.base_url),
                   "DBT_TARGET_PATH": str(self.root / "dbt_target"), "DBT_LOG_PATH": str(self.root / "dbt_logs"),
                   "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}, *DBT_ARGS)


@contextmanager
def serve(root: Path) -> Iterator[Served]:
    from orchestration.demo import start_server

    process, settings = start_server(root / "sandbox")
    try:
        yield Served(root, settings)
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# -- pushing and counting -------------------------------------------------------------------------

@dataclass
class PushFigures:
    """Companies then deals, pushed back to back in one budget, summed."""

    sent: int
    changed: int
    total: int
    write_calls: int
    requests: int
    rate_limited: int
    seconds: float
    rate_limit: int
    rate_window_s: float
    batch_size: int
    server_write_calls: int
    server_requests: int
    busiest_window: int
    per_object: dict[str, dict[str, Any]]

    @property
    def records_per_s(self) -> float:
        return self.sent / self.seconds

    @property
    def ceiling(self) -> float:
        """Records/s the budget allows: `rate_limit / rate_window_s × batch_size`."""
        return self.rate_limit / self.rate_window_s * self.batch_size

    @property
    def budget(self) -> str:
        return f"{self.rate_limit} / {self.rate_window_s:g} s x batch {self.batch_size}"

    @property
    def calls_per_changed(self) -> float:
        return self.write_calls / self.changed if self.changed else 0.0


def push_both(served: Served, **overrides: Any) -> PushFigures:
    """Push companies then deals with rate limits on; counts from the client and the server."""
    from reverse_etl import Settings, push

    served.rate_limits(True)
    served.reset_requests()
    per_object: dict[str, dict[str, Any]] = {}
    settings = Settings.from_env(served.env(), **overrides)
    started = time.perf_counter()
    for object_type in OBJECT_TYPES:
        result = push(object_type, settings=settings)
        if result.status != "success":
            raise RuntimeError(f"{object_type} push ended {result.status}: {result.message}")
        per_object[object_type] = {k: v for k, v in result.as_metadata().items()
                                   if k in ("total", "changed", "sent", "unchanged", "write_calls", "requests",
                                            "rate_limited", "seconds", "first_push")}
        per_object[object_type]["new"] = sum(1 for c in result.changes if c.new)
        per_object[object_type]["routine"] = sum(1 for c in result.changes if c.routine and not c.new)
    seconds = time.perf_counter() - started
    on_server = served.hubspot_requests()
    return PushFigures(
        sent=sum(p["sent"] for p in per_object.values()),
        changed=sum(p["changed"] for p in per_object.values()),
        total=sum(p["total"] for p in per_object.values()),
        write_calls=sum(p["write_calls"] for p in per_object.values()),
        requests=sum(p["requests"] for p in per_object.values()),
        rate_limited=sum(p["rate_limited"] for p in per_object.values()),
        seconds=seconds,
        rate_limit=settings.rate_limit,
        rate_window_s=settings.rate_window_s,
        batch_size=settings.batch_size,
        server_write_calls=sum(n for route, n in on_server.items() if route.endswith("/batch/update")),
        server_requests=sum(on_server.values()),
        busiest_window=busiest_window(served.arrivals(), settings.rate_window_s),
        per_object=per_object,
    )


def busiest_window(arrivals: list[float], window_s: float) -> int:
    """The most arrivals in any rolling window of `window_s` seconds (sorted input)."""
    return max((bisect.bisect_left(arrivals, t + window_s) - i for i, t in enumerate(arrivals)), default=0)


def client_only(served: Served, payloads: dict[str, list[dict[str, Any]]], batch_size: int) -> dict[str, Any]:
    """The same batches through `HubSpotClient.batch_update` alone: no diff, no warehouse."""
    from reverse_etl import HubSpotClient, Settings

    settings = Settings.from_env(served.env(), batch_size=batch_size)
    client = HubSpotClient(settings)  # the process's limiter of this account: the push's budget continues
    served.reset_requests()
    sent = 0
    started = time.perf_counter()
    for object_type, inputs in payloads.items():
        for start in range(0, len(inputs), batch_size):
            outcome = client.batch_update(object_type, inputs[start:start + batch_size])
            sent += len(outcome.accepted)
    seconds = time.perf_counter() - started
    return {"sent": sent, "requests": client.stats.requests, "rate_limited": client.stats.rate_limited,
            "seconds": seconds, "ceiling": settings.rate_limit / settings.rate_window_s * batch_size,
            "busiest_window": busiest_window(served.arrivals(), settings.rate_window_s),
            "server_requests": sum(served.hubspot_requests().values())}


def first_push_payloads(served: Served) -> dict[str, list[dict[str, Any]]]:
    """What a first push would send, per object type (a dry run: no HTTP call)."""
    from reverse_etl import Settings, dry_run

    settings = Settings.from_env(served.env())
    return {t: [{"id": c.record_id, "properties": c.payload} for c in dry_run(t, settings=settings).changes]
            for t in OBJECT_TYPES}


# -- the benchmark --------------------------------------------------------------------------------

def _median(runs: list[PushFigures], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def _add_push_rows(report: Report, name: str, runs: list[PushFigures], *, first: bool) -> None:
    last = runs[-1]
    detail: dict[str, Any] = {"repeats": len(runs), "per_object": last.per_object}
    if len({(r.sent, r.changed, r.write_calls, r.requests) for r in runs}) > 1:
        detail["note"] = "counts differ between repeats: " + "; ".join(
            f"sent {r.sent}, changed {r.changed}, {r.write_calls} write calls, {r.requests} requests" for r in runs)
    if first:
        report.add(name, "records sent (companies + deals)", last.sent, "records", **detail)
    else:
        report.add(name, "changed records (companies + deals)", last.changed, "records",
                   total=last.total, **detail)
    report.add(name, "write calls (batch updates)", last.write_calls, "calls",
               on_server=last.server_write_calls)
    fewest = sum(math.ceil(p["changed"] / last.batch_size) for p in last.per_object.values())
    report.add(name, "write calls per changed record", last.calls_per_changed, "calls/record",
               ideal=1 / last.batch_size, floor=fewest / last.changed if last.changed else 0.0,
               note=f"ideal: 1 / batch size ({last.batch_size}); floor: one partly filled batch per object type")
    report.add(name, "requests, property setup/reads included", last.requests, "requests",
               on_server=last.server_requests, busiest_window=last.busiest_window)
    report.add(name, "wall time (median)", _median(runs, "seconds"), "s", samples=[r.seconds for r in runs])
    if first:
        rate = _median(runs, "records_per_s")
        report.add(name, "records/s (median)", rate, "records/s", samples=[r.records_per_s for r in runs])
        report.add(name, f"budget ceiling: {last.budget}", last.ceiling, "records/s")
        report.add(name, "achieved / ceiling", rate / last.ceiling, "ratio")
    report.add(name, "429s received", max(r.rate_limited for r in runs), "responses")


def run(report: Report, data_dir: Path, scale: str, repeats: int = 3) -> None:
    """Load and build a copy of the firm in `data_dir`, then measure its pushes (see the module doc)."""
    started = time.perf_counter()
    phases: dict[str, float] = {}

    @contextmanager
    def phase(name: str) -> Iterator[None]:
        began = time.perf_counter()
        yield
        phases[name] = round(phases.get(name, 0.0) + time.perf_counter() - began, 1)

    with tempfile.TemporaryDirectory(prefix=f"retl-bench-{scale}-") as tmp:
        work = Path(tmp)
        built = work / "built"
        with phase("load and build"):
            copy_sandbox(data_dir, built / "sandbox")
            with serve(built) as served:
                served.load_and_build()

        first: list[PushFigures] = []
        with phase("first pushes"):
            for i in range(repeats):
                firm = copy_firm(built, work / f"first-{i}")
                with serve(firm) as served:
                    first.append(push_both(served))
                if i > 0:
                    shutil.rmtree(firm)
        with phase("the day after: advance, load, build"):  # from the first firm, its first push confirmed
            with serve(work / "first-0") as served:
                advance(work / "first-0" / "sandbox", 1)
                served.load_and_build()
        _add_push_rows(report, f"reverse ETL first push ({scale})", first, first=True)

        steady: list[PushFigures] = []
        with phase("pushes after one day"):
            for i in range(repeats):
                firm = copy_firm(work / "first-0", work / f"steady-{i}")
                with serve(firm) as served:
                    steady.append(push_both(served))
                shutil.rmtree(firm)
        _add_push_rows(report, f"reverse ETL after one simulated day ({scale})", steady, first=False)

        if scale in BUDGET_BOUND_SCALES:
            with phase("budget-bound push and client"):
                _budget_bound(report, copy_firm(built, work / "budget"), scale)
    report.add(f"reverse ETL benchmark ({scale})", "wall time, setup included", time.perf_counter() - started, "s",
               phases=phases)


def _budget_bound(report: Report, firm: Path, scale: str) -> None:
    name = f"reverse ETL budget-bound, batch {BUDGET_BATCH_SIZE} ({scale})"
    with serve(firm) as served:
        payloads = first_push_payloads(served)
        pushed = push_both(served, batch_size=BUDGET_BATCH_SIZE)
        alone = client_only(served, payloads, BUDGET_BATCH_SIZE)
    report.add(name, "push: records sent", pushed.sent, "records", per_object=pushed.per_object)
    report.add(name, "push: requests (write calls + property setup)", pushed.requests, "requests",
               write_calls=pushed.write_calls, on_server=pushed.server_requests,
               budget_windows=pushed.requests / pushed.rate_limit)
    report.add(name, "push: wall time (once)", pushed.seconds, "s")
    report.add(name, "push: records/s", pushed.records_per_s, "records/s")
    report.add(name, f"budget ceiling: {pushed.budget}", pushed.ceiling, "records/s")
    report.add(name, "push: achieved / ceiling", pushed.records_per_s / pushed.ceiling, "ratio",
               note="near 1 = the budget is the physical limit; well below = the client is")
    report.add(name, "push: busiest rolling window", pushed.busiest_window, "requests",
               budget=pushed.rate_limit, window_s=pushed.rate_window_s,
               note=f"arrivals in the server's request log; must not exceed the budget ({pushed.rate_limit})")
    report.add(name, "push: 429s received", pushed.rate_limited, "responses")
    rate = alone["sent"] / alone["seconds"]
    report.add(name, "HTTP client alone: records/s", rate, "records/s", **alone)
    report.add(name, "HTTP client alone: achieved / ceiling", rate / alone["ceiling"], "ratio")
    report.add(name, "HTTP client alone: busiest rolling window", alone["busiest_window"], "requests",
               budget=pushed.rate_limit)
    report.add(name, "HTTP client alone: 429s received", alone["rate_limited"], "responses")
