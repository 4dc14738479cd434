"""Ingestion throughput per source, beside baselines measured in the same run.

- Source: rows landed per second by a first (full) load through the real dlt source, counting
  every landed row (child tables and quarantine included) against the wall time of `run_source`.
- Fetch only: the same API pages fetched (same endpoints, page sizes) and thrown away — how fast
  the server hands them out. A source near this rate is limited by the server, not by dlt.
- Direct (the issue's baseline): the pages fetched and saved as JSON files, then read into DuckDB
  with `read_json`; for the ERP, Python's sqlite3/psycopg into Arrow into DuckDB (DuckDB's own
  SQLite scanner exists only for DuckDB <= 1.5, which cannot be installed beside 2.0).

Each figure is the median of `repeats` runs, each into a fresh warehouse.
"""

from __future__ import annotations

import importlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb
import orjson
import pyarrow as pa
import requests

from benchmarks.harness import Report
from ingestion.erp.settings import LINK_TABLES, TABLES

SYSTEMS = ("harvest", "erp", "stripe", "hubspot")


# -- walking the APIs the way the sources do -------------------------------------------------------

def _harvest_pages(s: dict[str, str]) -> Iterator[tuple[str, list]]:
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {s['SOURCES__HARVEST__ACCESS_TOKEN']}",
                            "Harvest-Account-Id": s["SOURCES__HARVEST__ACCOUNT_ID"],
                            "User-Agent": "Concord benchmark (data@concord.example)"})
    for name in ("clients", "projects", "users", "tasks", "time_entries", "expenses"):
        url = f"{s['SOURCES__HARVEST__BASE_URL']}/{name}?per_page=2000"
        while url:
            body = session.get(url, timeout=60).content
            yield name, body
            url = orjson.loads(body)["links"]["next"]


def _stripe_pages(s: dict[str, str]) -> Iterator[tuple[str, bytes]]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {s['SOURCES__STRIPE__API_KEY']}"
    for name in ("customers", "invoices", "charges", "credit_notes", "disputes"):
        params: dict[str, Any] = {"limit": 100}
        while True:
            body = session.get(f"{s['SOURCES__STRIPE__BASE_URL']}/v1/{name}", params=params, timeout=60).content
            yield name, body
            page = orjson.loads(body)
            if not page["has_more"]:
                break
            params["starting_after"] = page["data"][-1]["id"]


def _hubspot_pages(s: dict[str, str]) -> Iterator[tuple[str, bytes]]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {s['SOURCES__HUBSPOT__ACCESS_TOKEN']}"
    base = s["SOURCES__HUBSPOT__BASE_URL"]
    for name in ("companies", "contacts", "deals"):
        names = [p["name"] for p in session.get(f"{base}/crm/v3/properties/{name}", timeout=60).json()["results"]]
        url: str | None = f"{base}/crm/v3/objects/{name}"
        params: dict[str, Any] | None = {"limit": 100, "properties": ",".join(names), "associations": "companies"}
        while url:
            body = session.get(url, params=params, timeout=60).content
            yield name, body
            page = orjson.loads(body)
            url, params = (page["paging"]["next"]["link"], None) if "paging" in page else (None, None)


PAGES: dict[str, tuple[Callable[[dict[str, str]], Iterator[tuple[str, bytes]]], str]] = {
    "harvest": (_harvest_pages, None),
    "stripe": (_stripe_pages, "data"),
    "hubspot": (_hubspot_pages, "results"),
}


def _records(system: str, name: str, page: dict) -> list:
    return page[name] if system == "harvest" else page[PAGES[system][1]]


def fetch_only(system: str, settings: dict[str, str]) -> tuple[int, float]:
    started, rows = time.perf_counter(), 0
    for name, body in PAGES[system][0](settings):
        rows += len(_records(system, name, orjson.loads(body)))
    return rows, time.perf_counter() - started


def fetch_and_read_json(system: str, settings: dict[str, str], workdir: Path) -> tuple[int, float]:
    """Fetch every page and save its records as JSON, then load each object type with read_json."""
    started = time.perf_counter()
    files: dict[str, list[Path]] = {}
    for n, (name, body) in enumerate(PAGES[system][0](settings)):
        path = workdir / f"{name}-{n:05d}.json"
        path.write_bytes(orjson.dumps(_records(system, name, orjson.loads(body))))
        files.setdefault(name, []).append(path)
    rows = 0
    with duckdb.connect(str(workdir / "direct.duckdb")) as con:
        for name, paths in files.items():
            listing = ", ".join(f"'{p}'" for p in paths)
            con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_json([{listing}], "
                        "format = 'array', union_by_name = true, maximum_object_size = 67108864)")
            rows += con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    return rows, time.perf_counter() - started


def erp_direct(settings: dict[str, str], workdir: Path) -> tuple[int, float]:
    """The ERP's tables through the database driver into Arrow into DuckDB, with no dlt."""
    from sqlalchemy import create_engine

    started, rows = time.perf_counter(), 0
    engine = create_engine(settings["SOURCES__ERP__CREDENTIALS"])
    with engine.connect() as conn, duckdb.connect(str(workdir / "direct.duckdb")) as con:
        for table in [*TABLES, *LINK_TABLES]:
            cursor = conn.exec_driver_sql(f"SELECT * FROM {table}")
            names = list(cursor.keys())
            data = cursor.fetchall()
            arrow = pa.table({name: [row[i] for row in data] for i, name in enumerate(names)})
            con.register("incoming", arrow)
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming")
            con.unregister("incoming")
            rows += len(data)
    engine.dispose()
    return rows, time.perf_counter() - started


def through_source(system: str, workdir: Path) -> tuple[int, float]:
    from ingestion.warehouse import run_source

    os.environ["CONCORD_WAREHOUSE"] = str(workdir / "warehouse.duckdb")
    source = importlib.import_module(f"ingestion.{system}").source()
    started = time.perf_counter()
    report = run_source(source, system)
    return sum(report.row_counts.values()), time.perf_counter() - started


def _median_rate(runs: list[tuple[int, float]]) -> tuple[float, int]:
    return statistics.median(rows / seconds for rows, seconds in runs), runs[-1][0]


def run(report: Report, data_dir: Path, scale: str, repeats: int = 3) -> None:
    from orchestration.demo import start_server

    process, settings = start_server(data_dir)
    saved = {name: os.environ.get(name) for name in [*settings, "CONCORD_WAREHOUSE"]}
    os.environ.update(settings)
    try:
        for system in SYSTEMS:
            figures: dict[str, list[tuple[int, float]]] = {"source": [], "direct": [], "fetch": []}
            for _ in range(repeats):
                with tempfile.TemporaryDirectory(prefix=f"ingest-{system}-") as tmp:
                    figures["source"].append(through_source(system, Path(tmp)))
                with tempfile.TemporaryDirectory(prefix=f"direct-{system}-") as tmp:
                    if system == "erp":
                        figures["direct"].append(erp_direct(settings, Path(tmp)))
                    else:
                        figures["direct"].append(fetch_and_read_json(system, settings, Path(tmp)))
                        figures["fetch"].append(fetch_only(system, settings))
            source_rate, rows = _median_rate(figures["source"])
            direct_rate, direct_rows = _median_rate(figures["direct"])
            name = f"ingest {system} ({scale})"
            report.add(name, "source, first load", source_rate, "rows/s", rows=rows, repeats=repeats)
            baseline = "sqlite3/psycopg -> Arrow -> DuckDB" if system == "erp" else "fetch + save JSON + read_json"
            report.add(name, f"direct: {baseline}", direct_rate, "rows/s", rows=direct_rows)
            report.add(name, "source / direct", source_rate / direct_rate, "ratio")
            if figures["fetch"]:
                fetch_rate, _ = _median_rate(figures["fetch"])
                report.add(name, "fetch only (server-bound)", fetch_rate, "records/s")
                report.add(name, "source / fetch only", source_rate / fetch_rate, "ratio",
                           note="rows include child tables, so can exceed 1; near or above 1 = server-bound")
    finally:
        process.terminate()
        process.wait(timeout=10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
