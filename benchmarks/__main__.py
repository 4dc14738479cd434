"""`make bench SCALE=small` / `python -m benchmarks --scale small,medium`."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks import dbt_bench, ingestion_bench, sandbox_bench
from benchmarks.harness import Report

SCALES = ("small", "medium", "large")


def main() -> None:
    parser = argparse.ArgumentParser(description="Concord benchmarks: a table on stdout, figures as JSON.")
    parser.add_argument("--scale", default="small",
                        help="comma-separated scales to generate and measure (small, medium, large); "
                             "ingestion is measured on medium when it is among them")
    parser.add_argument("--repeats", type=int, default=3, help="runs per ingestion figure (median reported)")
    args = parser.parse_args()
    scales = [s.strip() for s in args.scale.split(",") if s.strip()]
    unknown = set(scales) - set(SCALES)
    if unknown:
        parser.error(f"unknown scale(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCALES)}")
    report = Report(f"Concord benchmarks ({', '.join(scales)})")
    with tempfile.TemporaryDirectory(prefix="concord-bench-") as tmp:
        data_dirs = sandbox_bench.run(report, scales, Path(tmp))
        ingest_scale = "medium" if "medium" in data_dirs else scales[0]
        ingestion_bench.run(report, data_dirs[ingest_scale], ingest_scale, repeats=args.repeats)
        dbt_bench.run(report, data_dirs[ingest_scale], ingest_scale)
    report.print()
    print(f"\nfigures written to {report.write()}")


if __name__ == "__main__":
    main()
