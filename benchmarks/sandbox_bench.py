"""The sandbox's own figures: how long a firm takes to generate, how much memory that needs
(with its default messy-but-valid data and without, side by side), and how fast its servers hand
out records compared with how fast a client can merely parse them.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import orjson
import pyarrow as pa
import requests

from benchmarks.harness import Report, run_child

GENERATE = """
import json, resource, sys, time
from sandbox.lifecycle import generate
from sandbox.world.config import noise_rates
started = time.perf_counter()
noise = None if len(sys.argv) < 4 or sys.argv[3] == "on" else noise_rates(0.0)
summary = generate(sys.argv[1], scale=sys.argv[2], seed=1, noise_rates=noise)
print(json.dumps({"seconds": time.perf_counter() - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "time_entries": summary.counts["harvest"]["time_entries"],
                  "clients": summary.counts["hubspot"]["companies"],
                  "invoices": summary.counts["stripe"]["invoices"]}))
"""
REPEATS = {"small": 5, "medium": 3, "large": 1}


def bench_generate(report: Report, scale: str, workdir: Path) -> Path:
    """Noise on (the default) and off, alternated run by run so both see the same machine."""
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    for i in range(REPEATS[scale]):
        for noise in ("off", "on"):
            runs[noise].append(run_child(GENERATE, str(workdir / f"{scale}-{noise}-{i}"), scale, noise))
    for noise, samples in runs.items():
        name = f"generate {scale}, noise {noise}"
        report.add(name, "median time", statistics.median(r["seconds"] for r in samples), "s", runs=len(samples),
                   samples=[r["seconds"] for r in samples])
        report.add(name, "peak memory", statistics.median(r["peak_rss_mb"] for r in samples), "MiB",
                   samples=[r["peak_rss_mb"] for r in samples])
    for what, key in (("time", "seconds"), ("peak memory", "peak_rss_mb")):
        ratio = statistics.median(on[key] / off[key] for on, off in zip(runs["on"], runs["off"]))
        report.add(f"generate {scale}", f"{what}, noise on / off", ratio, "ratio", note="median of paired runs")
    last = runs["on"][-1]
    report.add(f"generate {scale}", "time entries", last["time_entries"], "rows", clients=last["clients"],
               invoices=last["invoices"])
    return workdir / f"{scale}-on-{REPEATS[scale] - 1}"


def _walk(session: requests.Session, url: str, headers: dict, params: dict, next_url, pages: int,
          records_of) -> tuple[list[float], list[float], int]:
    """Fetch up to `pages` pages; per page, records/s served and records/s the leanest client
    could consume them (parse the JSON, make an Arrow table: no pipeline does less)."""
    serve_rates, parse_rates, total = [], [], 0
    for _ in range(pages):
        started = time.perf_counter()
        response = session.get(url, headers=headers, params=params, timeout=60)
        served = time.perf_counter() - started
        response.raise_for_status()
        started = time.perf_counter()
        payload = orjson.loads(response.content)
        pa.Table.from_pylist(records_of(payload))
        parsed = time.perf_counter() - started
        n = len(records_of(payload))
        if n == 0:
            break
        total += n
        serve_rates.append(n / served)
        parse_rates.append(n / parsed)
        url, params = next_url(payload), None
        if url is None:
            break
    return serve_rates, parse_rates, total


def bench_serving(report: Report, data_dir: Path) -> None:
    from orchestration.demo import start_server

    process, settings = start_server(data_dir)
    try:
        session = requests.Session()
        harvest_headers = {"Authorization": f"Bearer {settings['SOURCES__HARVEST__ACCESS_TOKEN']}",
                           "Harvest-Account-Id": settings["SOURCES__HARVEST__ACCOUNT_ID"],
                           "User-Agent": "Concord benchmark (data@concord.example)"}
        serve, parse, total = _walk(
            session, f"{settings['SOURCES__HARVEST__BASE_URL']}/time_entries", harvest_headers,
            {"per_page": 2000}, lambda p: p["links"]["next"], 40, lambda p: p["time_entries"])
        _add_rates(report, "Harvest time_entries, 2000 per page", serve, parse, total)
        stripe_headers = {"Authorization": f"Bearer {settings['SOURCES__STRIPE__API_KEY']}"}
        base = f"{settings['SOURCES__STRIPE__BASE_URL']}/v1/invoices"
        serve, parse, total = _walk(
            session, base, stripe_headers, {"limit": 100},
            lambda p: f"{base}?limit=100&starting_after={p['data'][-1]['id']}" if p["has_more"] else None,
            60, lambda p: p["data"])
        _add_rates(report, "Stripe invoices, 100 per page", serve, parse, total)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _add_rates(report: Report, name: str, serve: list[float], parse: list[float], total: int) -> None:
    served, parsed = statistics.median(serve), statistics.median(parse)
    report.add(name, "served (median page)", served, "records/s", pages=len(serve), records=total)
    report.add(name, "leanest client (orjson + Arrow)", parsed, "records/s")
    report.add(name, "served / leanest client", served / parsed, "ratio",
               note="above 1 the sandbox outpaces even a client that only parses and tabulates")


def generate_only(scales: list[str], workdir: Path) -> dict[str, Path]:
    """One firm per scale, unmeasured, for the benchmarks that need one when this one is not run."""
    for scale in scales:
        run_child(GENERATE, str(workdir / f"{scale}-on-0"), scale)
    return {scale: workdir / f"{scale}-on-0" for scale in scales}


def run(report: Report, scales: list[str], workdir: Path) -> dict[str, Path]:
    """Generate each scale (keeping one data dir per scale for later benchmarks) and measure
    serving on the largest."""
    data_dirs = {scale: bench_generate(report, scale, workdir) for scale in scales}
    bench_serving(report, data_dirs[scales[-1]])
    return data_dirs
