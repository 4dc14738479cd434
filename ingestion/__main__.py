"""`python -m ingestion [SYSTEM ...]`: load systems into the warehouse without Dagster."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ingestion.http import SourceError
from ingestion.warehouse import SYSTEMS, run_source, warehouse_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion", description=__doc__)
    parser.add_argument("systems", nargs="*", choices=[*SYSTEMS, []], default=list(SYSTEMS),
                        metavar="SYSTEM", help=f"any of {', '.join(SYSTEMS)} (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"warehouse: {warehouse_path()}")
    for system in args.systems:
        source = importlib.import_module(f"ingestion.{system}").source()
        try:
            report = run_source(source, system)
        except SourceError as exc:
            print(f"{system}: FAILED: {exc}", file=sys.stderr)
            return 1
        rows = ", ".join(f"{table} {n:,}" for table, n in sorted(report.row_counts.items())) or "nothing new"
        resumed = " (after finishing an interrupted load)" if report.resumed else ""
        print(f"{system}: {rows}; {report.quarantined} quarantined; {report.seconds:.1f} s{resumed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
