"""Measuring without fooling ourselves: repeated runs, medians, one table, one JSON file.

Figures that are compared are measured side by side in the same run, because these machines
are noisy; a ratio from one run means more than two absolute numbers from two.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def run_child(code: str, *args: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter; it must print one JSON object as its last line.

    A child process gives each measurement its own peak memory (ru_maxrss) and its own core.
    """
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.setdefault("wall_s", time.perf_counter() - started)
    return result


class Report:
    def __init__(self, title: str):
        self.title = title
        self.rows: list[dict[str, Any]] = []

    def add(self, benchmark: str, figure: str, value: float, unit: str, **detail: Any) -> None:
        self.rows.append({"benchmark": benchmark, "figure": figure, "value": value, "unit": unit, **detail})

    def print(self) -> None:
        print(f"\n{self.title}")
        width = max(len(r["benchmark"]) + len(r["figure"]) for r in self.rows) + 3
        for row in self.rows:
            label = f"{row['benchmark']}: {row['figure']}"
            value = row["value"]
            if isinstance(value, int):
                shown = f"{value:,}"
            elif abs(value) >= 100:
                shown = f"{value:,.0f}"
            else:
                shown = f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"
            print(f"  {label:<{width}} {shown:>14} {row['unit']}")

    def write(self) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"{stamp}.json"
        path.write_text(json.dumps({
            "title": self.title, "at": stamp, "python": sys.version.split()[0],
            "machine": platform.machine(), "cpus": __import__("os").cpu_count(), "figures": self.rows,
        }, indent=2))
        return path
