"""Create a sandbox data dir (`generate`) and move its firm forward in time (`advance`).

Both simulate the firm from the fixed start of history and project it into the systems' state:
`generate` everything up to the as-of date, `advance` only what happened in the new days, so
incremental readers see exactly the records that changed. The ERP is committed before the
vendor state and clock, so a crash mid-way leaves a state that re-running `advance` repairs
(ERP writes are idempotent upserts).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from sandbox import erp_schema, facts, ground_truth, store
from sandbox.facts import erp as erp_facts
from sandbox.credentials import new_credentials
from sandbox.project import Window, erp, harvest, hubspot, stripe
from sandbox.world.config import (
    DAY, DEFAULT_AS_OF, DEFAULT_START, SCALES, WorldConfig, fault_rates as default_fault_rates,
    noise_rates as default_noise_rates, parse_date,
)
from sandbox.world.derived import derive
from sandbox.world.firm import simulate

@dataclasses.dataclass
class Summary:
    data_dir: Path
    as_of: int
    counts: dict[str, dict[str, int]]
    faults: int
    seconds: float
    noise: dict[str, int] = dataclasses.field(default_factory=dict)  # messy-but-valid records served


def generate(data_dir: str | Path, *, scale: str = "small", seed: int = 1, as_of: str = DEFAULT_AS_OF,
             start: str = DEFAULT_START, erp_url: str | None = None,
             fault_rates: dict[str, float] | None = None, noise_rates: dict[str, float] | None = None) -> Summary:
    """Create (or recreate) a data dir holding the firm's history up to `as_of`."""
    started = time.perf_counter()
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    start_ts, end = parse_date(start), parse_date(as_of)
    if end <= start_ts:
        raise ValueError(f"as-of date {as_of} must be after the start of history {start}")
    rates = fault_rates or default_fault_rates()
    noise = noise_rates or default_noise_rates()
    config = WorldConfig(seed=seed, scale=SCALES[scale], start=start_ts, fault_rates=rates, noise_rates=noise)
    world = simulate(config, end)
    derived = derive(world)

    for suffix in ("", "-wal", "-shm"):
        Path(str(store.state_path(data_dir)) + suffix).unlink(missing_ok=True)
    engine = erp_schema.engine_for(erp_url or f"sqlite:///{(data_dir / store.ERP_FILE).resolve()}")
    erp_schema.create(engine, reset=True)

    window = Window(start=None, end=end)
    con = store.connect(data_dir, create=True)
    try:
        counts = {}
        with engine.begin() as conn:
            counts["erp"] = erp.project(world, derived, window, conn)
        con.execute("BEGIN IMMEDIATE")
        counts["hubspot"] = hubspot.project(world, derived, window, con)
        counts["stripe"] = stripe.project(world, derived, window, con)
        counts["harvest"] = harvest.project(world, derived, window, con)
        store.set_meta(con, "config", {"seed": seed, "scale": scale, "start": start, "fault_rates": rates,
                                       "noise_rates": noise})
        store.set_meta(con, "credentials", new_credentials())
        store.set_meta(con, "erp_url", erp_url)
        _set_clock(con, end)
        con.execute("COMMIT")
    finally:
        con.close()
        engine.dispose()
    faults, noise_served = _write_ground_truth(data_dir, world, derived, end)
    return Summary(data_dir, end, counts, faults, time.perf_counter() - started, noise_served)


def advance(data_dir: str | Path, days: float) -> Summary:
    """Simulate `days` more days and apply what happened in them to every system."""
    started = time.perf_counter()
    if days <= 0:
        raise ValueError("days must be positive")
    data_dir = Path(data_dir)
    con = store.connect(data_dir)
    try:
        saved = store.get_meta(con, "config")
        clock = store.Clock(con)
        now = clock.now_ms // 1000
        end = now + int(days * DAY)
        # a state generated before noise existed keeps a noiseless firm
        config = WorldConfig(seed=saved["seed"], scale=SCALES[saved["scale"]], start=parse_date(saved["start"]),
                             fault_rates=saved["fault_rates"],
                             noise_rates=saved.get("noise_rates") or default_noise_rates(0.0))
        written = facts.read(con)
        world = simulate(config, end, facts.amend_time(written))
        facts.apply(world, written)
        derived = derive(world)
        window = Window(start=now, end=end, floor_ms=clock.floor_ms())
        engine = erp_schema.engine_for(store.erp_url(con, data_dir))
        counts: dict[str, Any] = {}
        try:
            with engine.begin() as conn:
                counts["erp"] = erp.project(world, derived, window, conn, erp_facts.users_rows(conn))
        finally:
            engine.dispose()
        con.execute("BEGIN IMMEDIATE")
        try:
            counts["hubspot"] = hubspot.project(world, derived, window, con, written)
            counts["stripe"] = stripe.project(world, derived, window, con, written)
            counts["harvest"] = harvest.project(world, derived, window, con, written)
            _set_clock(con, end, clock.last_stamp_ms)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    writes = facts.hubspot_writes(written)
    merged = {int(i) for (object_type, i) in writes.merged_into if object_type == "companies"}
    faults, noise_served = _write_ground_truth(data_dir, world, derived, end, writes.properties, merged)
    return Summary(data_dir, end, counts, faults, time.perf_counter() - started, noise_served)


def _set_clock(con, end: int, last_stamp_ms: int = 0) -> None:
    """Move the clock to `end`; later API writes stamp after every stamp just projected
    (HubSpot stamps carry sub-second jitter, so up to the last millisecond of `end`)."""
    store.set_meta(con, "now_ms", end * 1000)
    store.set_meta(con, "last_stamp_ms", max(last_stamp_ms, end * 1000 + 999))


def _write_ground_truth(data_dir: Path, world, derived, at: int, hubspot_written: dict | None = None,
                        hubspot_merged: set[int] | None = None) -> tuple[int, dict[str, int]]:
    """Write the ground truth; (faults, messy-but-valid records per kind) as of `at`."""
    entries = ground_truth.GroundTruth(world, derived, at, hubspot_written, hubspot_merged).entries()
    ground_truth.write(data_dir / store.GROUND_TRUTH_FILE, entries)
    return len(ground_truth.faults(entries)), ground_truth.noise_served(entries)
