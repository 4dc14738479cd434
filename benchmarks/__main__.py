"""`make bench SCALE=small` / `python -m benchmarks --scale small,medium`."""

from __future__ import annotations

import argparse

from benchmarks import sandbox_bench
from benchmarks.harness import Report

SCALES = ("small", "medium", "large")


def main() -> None:
    parser = argparse.ArgumentParser(description="Concord benchmarks: a table on stdout, figures as JSON.")
    parser.add_argument("--scale", default="small",
                        help="comma-separated scales to generate and measure (small, medium, large)")
    args = parser.parse_args()
    scales = [s.strip() for s in args.scale.split(",") if s.strip()]
    unknown = set(scales) - set(SCALES)
    if unknown:
        parser.error(f"unknown scale(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCALES)}")
    report = Report(f"Concord benchmarks ({', '.join(scales)})")
    sandbox_bench.run(report, scales)
    report.print()
    print(f"\nfigures written to {report.write()}")


if __name__ == "__main__":
    main()
