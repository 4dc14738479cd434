"""Orchestration overhead: the demo pipeline end to end, split into Dagster's own time and the work.

The pipeline is the demo's (`make demo`): a firm (seed 1; small as in the demo, and medium with
`--scale medium`, to see how the split moves with volume) served by `concord sandbox serve`, a first run of the whole graph, `sandbox advance --days 3`, an incremental run. Each run
is timed three ways, each on its own freshly generated, identical firm and server, in its own
interpreter, in the same benchmark run:

- **direct, no Dagster**: the work alone, the same operations called one after another:
  `run_source` for the four systems, one `dbt build` by the dbt CLI (as dagster-dbt runs it: a
  subprocess, the same partial-parse file, the writers' lock), the three sync-model key checks,
  the report, the three pushes;
- **Dagster, in-memory instance**: `orchestration.runner.materialize("*")`, in-process, the run
  recorded in memory only (`concord run` without `DAGSTER_HOME`). Less the direct run, this is
  the orchestration overhead: planning, step setup, pools, and turning every dbt node and test
  into Dagster events;
- **Dagster, persistent instance**: the same, recorded in a SQLite instance (`<data dir>/
  dagster_home`, the repo's dagster.yaml) as the demo does so that `make ui` shows its runs. Less
  the in-memory run, this is what keeping the run history costs.

The data checks (freshness, exception thresholds, SLAs) exist only as Dagster checks; their
bodies' time, measured by wrapping Dagster's iteration of each step's body, is taken out of the
Dagster figures before comparing. The same wrapper gives a cross-check: the in-memory run less
the time inside all bodies should come close to the overhead. (It does not for the persistent
run: dbt's subprocess keeps building while Dagster stores the events already streamed, so time
spent waiting for dbt moves out of the dbt body.)

Also: the dbt invocations per run (each prints `Running with dbt=` once into the run's dbt log:
must be 1), the executor, Dagster's events per run, and the time to load the definitions (once
per process; the dbt manifest is parsed only when a project file changed).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.harness import Report, run_child

SCALES = ("small", "medium")  # large would take an hour a variant
SEED = 1
ADVANCE_DAYS = 3
RUNS = ("first", "incremental")
VARIANTS = ("dagster", "ephemeral", "direct")
DBT_BANNER = "Running with dbt="
# steps that are Dagster asset checks with no direct counterpart (their bodies' time is work, but
# the direct path does not do it)
DATA_CHECK_SUFFIXES = ("_freshness", "reconciliation_exception_thresholds", "business_slas")

CHILD = "from benchmarks.orchestration_bench import child; child()"


# -- in the child process ------------------------------------------------------------------------

def _instrument_step_bodies() -> dict[str, float]:
    """Time spent inside each step's body, per step key, by wrapping Dagster's compute iteration.

    Dagster iterates a step's user generator with `iterate_with_context` in
    `dagster._core.execution.plan.compute`; only the `next()` calls are the body's own time.
    """
    import dagster._core.execution.plan.compute as compute

    work: dict[str, float] = defaultdict(float)
    current: list[str] = ["?"]
    done = object()
    yield_compute_results = compute._yield_compute_results

    def timed_iterate(context_fn, iterator):
        key = current[0]
        while True:
            started = time.perf_counter()
            with context_fn():
                item = next(iterator, done)
            work[key] += time.perf_counter() - started
            if item is done:
                return
            yield item

    def yield_results(step_context, *args, **kwargs):
        current[0] = step_context.step.key
        return yield_compute_results(step_context, *args, **kwargs)

    compute.iterate_with_context = timed_iterate
    compute._yield_compute_results = yield_results
    return work


def _dagster_run(log: Path, work: dict[str, float]) -> dict[str, Any]:
    import dagster as dg

    from orchestration.runner import materialize, step_durations

    work.clear()
    started = time.perf_counter()
    result = materialize("*", log_level="ERROR", dbt_output=log, progress=False)
    wall = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"the Dagster run failed; dbt's output is in {log}")
    steps = step_durations(result)
    data_checks = sum(s for key, s in work.items() if key.endswith(DATA_CHECK_SUFFIXES))
    return {
        "wall_s": wall, "work_s": sum(work.values()), "data_check_work_s": data_checks,
        "steps_s": sum(steps.values()), "steps": steps, "work": dict(work),
        "events": len(result.all_events),
        "dbt_invocations": log.read_text().count(DBT_BANNER),
        "executor": result.job_def.executor_def.name,
        "materialisations": sum(1 for e in result.all_events
                                if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION),
    }


def _direct_run(root: Path, log: Path) -> dict[str, Any]:
    """The graph's operations without Dagster, in the order the run does them."""
    import importlib
    import subprocess

    from ingestion.warehouse import WriterLock, run_source, warehouse_path
    from orchestration.crm_assets import CRM_OBJECTS, key_counts
    from orchestration.dbt_assets import DBT_EXECUTABLE, PROJECT_DIR
    from orchestration.reconciliation_report import write_report
    from reverse_etl import Settings, push
    from reverse_etl.contract import spec_for

    parts: dict[str, float] = {}
    warehouse = warehouse_path()
    started = time.perf_counter()
    for system in ("erp", "harvest", "hubspot", "stripe"):
        t = time.perf_counter()
        run_source(importlib.import_module(f"ingestion.{system}").source(), system)
        parts[f"raw_{system}"] = time.perf_counter() - t

    t = time.perf_counter()
    target = root / f"dbt_target_{len(list(root.glob('dbt_target_*')))}"
    target.mkdir()
    partial = PROJECT_DIR / "target" / "partial_parse.msgpack"
    if partial.exists():  # what dagster-dbt does before each invocation
        shutil.copy(partial, target / partial.name)
    env = {**os.environ, "DBT_TARGET_PATH": str(target), "DBT_LOG_PATH": str(target),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    with WriterLock(warehouse), log.open("a") as out:
        done = subprocess.run([DBT_EXECUTABLE, "build", "--project-dir", str(PROJECT_DIR), "--profiles-dir",
                               str(PROJECT_DIR)], env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dbt build failed; see {log}")
    parts["dbt build"] = time.perf_counter() - t

    t = time.perf_counter()
    for crm in CRM_OBJECTS:
        spec = spec_for(crm.object_type)
        key_counts(spec.relation, spec.key)
    parts["key checks"] = time.perf_counter() - t

    t = time.perf_counter()
    write_report(warehouse, warehouse.parent / "reports")
    parts["report"] = time.perf_counter() - t

    settings = Settings.from_env()
    for crm in CRM_OBJECTS:
        t = time.perf_counter()
        result = push(crm.object_type, settings=settings)
        if not result.ok:
            raise RuntimeError(f"push {crm.object_type}: {result.status}")
        parts[f"push {crm.object_type}"] = time.perf_counter() - t
    return {"wall_s": time.perf_counter() - started, "parts": parts,
            "dbt_invocations": log.read_text().count(DBT_BANNER)}


def child() -> None:
    """`python -c ... <variant> <data dir>`: both runs of the pipeline; one JSON line on stdout."""
    variant, root = sys.argv[1], Path(sys.argv[2])
    from orchestration.demo import dagster_home, sandbox_clock, start_server
    from sandbox.lifecycle import advance

    os.environ.pop("DAGSTER_HOME", None)
    if variant == "dagster":
        os.environ["DAGSTER_HOME"] = str(dagster_home(root))
    os.environ["CONCORD_WAREHOUSE"] = str(root / "warehouse.duckdb")
    process, settings = start_server(root)
    out: dict[str, Any] = {"variant": variant}
    try:
        os.environ.update(settings)
        os.environ["CONCORD_AS_OF"] = sandbox_clock(settings)
        if variant != "direct":
            work = _instrument_step_bodies()
            started = time.perf_counter()
            import orchestration.definitions  # noqa: F401  (the dbt manifest, the dlt sources' shapes)
            import orchestration.runner  # noqa: F401
            out["definitions_load_s"] = time.perf_counter() - started
        for run in RUNS:
            if run == "incremental":
                advance(root, ADVANCE_DAYS)
                os.environ["CONCORD_AS_OF"] = sandbox_clock(settings)
            log = root / f"dbt-{run}.log"
            out[run] = _direct_run(root, log) if variant == "direct" else _dagster_run(log, work)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(json.dumps(out))


# -- in the benchmark process --------------------------------------------------------------------

def _median(samples: list[dict[str, Any]], *path: str) -> float:
    values = []
    for sample in samples:
        for name in path:
            sample = sample[name]
        values.append(float(sample))
    return statistics.median(values)


def run(report: Report, workdir: Path, scale: str = "small", repeats: int = 3) -> dict[str, list[dict[str, Any]]]:
    """Time the demo pipeline on a firm of `scale`, `repeats` times per variant (each on a fresh
    firm); add the figures."""
    from sandbox.lifecycle import generate

    samples: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    for repeat in range(repeats):
        order = VARIANTS[repeat % len(VARIANTS):] + VARIANTS[:repeat % len(VARIANTS)]  # spread the drift
        for variant in order:
            root = Path(tempfile.mkdtemp(prefix=f"orchestration-{variant}-", dir=workdir))
            generate(root, scale=scale, seed=SEED)
            print(f"orchestration ({scale}): {variant}, repeat {repeat + 1}/{repeats} ...", flush=True)
            samples[variant].append(run_child(CHILD, variant, str(root)))
            shutil.rmtree(root, ignore_errors=True)

    name = f"orchestration ({scale}, demo pipeline)"
    note = f"median of {repeats}" if repeats > 1 else "one run each: noisy, repeat before comparing"
    for run_name in RUNS:
        runs = {variant: [sample[run_name] for sample in samples[variant]] for variant in VARIANTS}
        walls = {variant: [r["wall_s"] for r in rs] for variant, rs in runs.items()}
        wall = {variant: statistics.median(values) for variant, values in walls.items()}
        # the Dagster runs less their data checks' bodies, which the direct path has no counterpart for
        comparable = {variant: statistics.median([r["wall_s"] - r["data_check_work_s"] for r in runs[variant]])
                      for variant in ("dagster", "ephemeral")}
        report.add(name, f"{run_name} run, direct (no Dagster)", wall["direct"], "s", note=note,
                   samples=walls["direct"],
                   parts={part: _median(samples["direct"], run_name, "parts", part)
                          for part in samples["direct"][0][run_name]["parts"]})
        for variant, label in (("ephemeral", "Dagster, in-memory instance"),
                               ("dagster", "Dagster, persistent instance (the demo)")):
            report.add(name, f"{run_name} run, {label}", wall[variant], "s", note=note, samples=walls[variant],
                       steps={step: statistics.median([r["steps"].get(step, 0.0) for r in runs[variant]])
                              for step in runs[variant][0]["steps"]})
        orchestration = comparable["ephemeral"] - wall["direct"]
        report.add(name, f"{run_name}: orchestration overhead (in-memory - direct)", orchestration, "s",
                   note="data-check bodies taken out of the Dagster run")
        report.add(name, f"{run_name}: orchestration overhead, share of the in-memory run",
                   orchestration / comparable["ephemeral"], "ratio")
        report.add(name, f"{run_name}: recording the run history (persistent - in-memory)",
                   wall["dagster"] - wall["ephemeral"], "s")
        report.add(name, f"{run_name}: all overhead, share of the demo's run (persistent - direct)",
                   1 - wall["direct"] / comparable["dagster"], "ratio")
        report.add(name, f"{run_name}: cross-check, in-memory run less the time inside its bodies",
                   statistics.median([r["wall_s"] - r["work_s"] for r in runs["ephemeral"]]), "s",
                   note="should be close to the orchestration overhead")
    dagster = samples["dagster"] + samples["ephemeral"]
    executor = dagster[0]["first"]["executor"]
    report.add(name, "dbt invocations per run", max(s[r]["dbt_invocations"] for s in dagster for r in RUNS),
               f"(executor: {'in_process' if 'in_process' in executor else executor})", note="must be 1")
    report.add(name, "Dagster events per run", int(_median(samples["dagster"], "first", "events")), "events")
    report.add(name, "definitions load (once per process)", _median(samples["dagster"], "definitions_load_s"), "s")
    return samples
