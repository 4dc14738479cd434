"""`make bench SCALE=small` / `python -m benchmarks --scale small,medium [--only reverse_etl]`."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks import dbt_bench, ingestion_bench, orchestration_bench, reverse_etl_bench, sandbox_bench
from benchmarks.harness import Report

SCALES = ("small", "medium", "large")
BENCHMARKS = ("sandbox", "ingest", "dbt", "reverse_etl", "orchestration")


def _choices(parser: argparse.ArgumentParser, raw: str, known: tuple[str, ...], what: str) -> list[str]:
    chosen = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = set(chosen) - set(known)
    if unknown or not chosen:
        parser.error(f"unknown {what} {', '.join(sorted(unknown)) or '(none given)'}; choose from {', '.join(known)}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description="Concord benchmarks: a table on stdout, figures as JSON.")
    parser.add_argument("--scale", default="small",
                        help="comma-separated scales to generate and measure (small, medium, large); "
                             "ingestion and dbt are measured on medium when it is among them, reverse ETL "
                             "on small and medium; orchestration always on the demo's small firm")
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated benchmarks to run (default all: {','.join(BENCHMARKS)}); "
                             "without sandbox the firms are generated but not measured")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per ingestion figure, per reverse-ETL push and per orchestration "
                             "variant (median reported)")
    args = parser.parse_args()
    scales = _choices(parser, args.scale, SCALES, "scale(s)")
    only = _choices(parser, args.only, BENCHMARKS, "benchmark(s)")
    ingest_scale = "medium" if "medium" in scales else scales[0]
    retl_scales = [s for s in scales if s in reverse_etl_bench.SCALES]
    report = Report(f"Concord benchmarks ({', '.join(scales)}; {', '.join(only)})")
    with tempfile.TemporaryDirectory(prefix="concord-bench-") as tmp:
        if "sandbox" in only:
            data_dirs = sandbox_bench.run(report, scales, Path(tmp))
        else:
            needed = {ingest_scale} if {"ingest", "dbt"} & set(only) else set()
            needed |= set(retl_scales) if "reverse_etl" in only else set()
            data_dirs = sandbox_bench.generate_only([s for s in scales if s in needed], Path(tmp))
        if "ingest" in only:
            ingestion_bench.run(report, data_dirs[ingest_scale], ingest_scale, repeats=args.repeats)
        if "dbt" in only:
            dbt_bench.run(report, data_dirs[ingest_scale], ingest_scale)
        if "reverse_etl" in only:
            if not retl_scales:
                print(f"reverse ETL is measured on {' and '.join(reverse_etl_bench.SCALES)}; "
                      f"neither is in --scale {args.scale}")
            for scale in retl_scales:
                reverse_etl_bench.run(report, data_dirs[scale], scale, repeats=args.repeats)
        if "orchestration" in only:
            for scale in [s for s in scales if s in orchestration_bench.SCALES]:
                orchestration_bench.run(report, Path(tmp), scale, repeats=args.repeats)
    if report.rows:
        report.print()
        print(f"\nfigures written to {report.write()}")


if __name__ == "__main__":
    main()
