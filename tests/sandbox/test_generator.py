"""The generator: deterministic per seed, coherent volumes, and time that passes consistently."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sandbox import ground_truth, store
from sandbox.lifecycle import advance, generate
from sandbox.project.erp import ts as erp_time
from sandbox.world.config import DAY, FAULT_TYPES, NOISE_KINDS, SCALES, WorldConfig, fault_rates, noise_rates, parse_date
from sandbox.world.firm import simulate
from tests.sandbox.snapshots import changed_keys, erp_state, vendor_state

AS_OF = "2026-10-01"


@pytest.fixture(scope="module")
def firm_a(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("firm") / "a"
    generate(data_dir, scale="small", seed=11, as_of=AS_OF)
    return data_dir


def test_same_seed_same_firm(firm_a: Path, tmp_path: Path) -> None:
    generate(tmp_path / "b", scale="small", seed=11, as_of=AS_OF)
    assert vendor_state(tmp_path / "b") == vendor_state(firm_a)
    erp_a, erp_b = erp_state(firm_a), erp_state(tmp_path / "b")
    assert erp_b == erp_a
    assert (tmp_path / "b" / "ground_truth.jsonl").read_bytes() == (firm_a / "ground_truth.jsonl").read_bytes()


def test_other_seed_other_firm(firm_a: Path, tmp_path: Path) -> None:
    generate(tmp_path / "c", scale="small", seed=12, as_of=AS_OF)
    names_a = {r["properties"] for r in vendor_state(firm_a)["hs_objects"].values()}
    names_c = {r["properties"] for r in vendor_state(tmp_path / "c")["hs_objects"].values()}
    assert not names_a & names_c


def test_small_firm_volumes() -> None:
    """About 50 clients and 20k time entries over the first year, three entities."""
    config = WorldConfig(seed=3, scale=SCALES["small"], start=parse_date("2025-11-01"), fault_rates=fault_rates())
    world = simulate(config, parse_date("2026-11-01"))
    assert 40 <= len(world.clients) <= 70
    assert 12_000 <= len(world.time_entries) <= 30_000
    assert set(np.unique(world.clients["entity"]).tolist()) == {0, 1, 2}
    assert set(np.unique(world.clients["currency"]).tolist()) == {0, 1, 2}
    assert set(np.unique(world.engagements["kind"]).tolist()) == {0, 1, 2}


def test_world_is_coherent() -> None:
    """Time is only logged inside engagements, approved after it is spent, billed after approval."""
    config = WorldConfig(seed=5, scale=SCALES["small"], start=parse_date("2025-11-01"), fault_rates=fault_rates())
    world = simulate(config, parse_date("2026-11-01"))
    te, eng = world.time_entries, world.engagements
    assert (te["spent_day"] >= eng["start_day"][te["engagement"]]).all()
    assert (te["spent_day"] <= eng["end_day"][te["engagement"]]).all()
    assert (((te["spent_day"] + 3) % 7) < 5).all(), "time is logged on weekdays"
    assert (te["approved_at"] > te["spent_day"] * DAY).all()
    billed = te["billed_at"] < 2**62
    assert (te["billed_at"][billed] > te["approved_at"][billed]).all()
    assert not te["billable"][billed].__invert__().any(), "only billable time is billed"
    inv = world.invoices
    lines = world.invoice_lines
    totals = np.zeros(len(inv), dtype=np.int64)
    np.add.at(totals, lines["invoice"], lines["amount"])
    assert (totals == inv["amount"]).all(), "invoice lines add up to the invoice"
    tm = inv["kind"] == 2
    billed_amount = np.zeros(len(inv))
    np.add.at(billed_amount, te["invoice"][billed], te["hours"][billed] * te["rate"][billed])
    exp = world.expenses
    exp_billed = exp["invoice"] >= 0
    np.add.at(billed_amount, exp["invoice"][exp_billed], exp["total_cost"][exp_billed])
    assert np.allclose(billed_amount[tm] * 100, inv["amount"][tm], atol=len(lines["amount"])), \
        "T&M invoices bill exactly the approved time and expenses they cover"


@pytest.mark.parametrize("seed, steps", [(21, (45,)), (22, (10, 3, 62))])
def test_advance_equals_generating_later(tmp_path: Path, seed: int, steps: tuple[int, ...]) -> None:
    """generate(T) then advance(N) leaves the same systems as generate(T + N)."""
    generate(tmp_path / "stepped", scale="small", seed=seed, as_of=AS_OF)
    for days in steps:
        advance(tmp_path / "stepped", days)
    later = parse_date(AS_OF) + sum(steps) * DAY
    generate(tmp_path / "direct", scale="small", seed=seed, as_of=_iso_day(later))
    stepped, direct = vendor_state(tmp_path / "stepped"), vendor_state(tmp_path / "direct")
    # Stripe keeps 30 days of events: compare those both can still serve.
    for state in (stepped, direct):
        state["stripe_events"] = {k: v for k, v in state["stripe_events"].items()
                                  if v["created"] > later - 30 * DAY}
    for table in stepped:
        assert stepped[table] == direct[table], f"{table} differs"
    assert erp_state(tmp_path / "stepped") == erp_state(tmp_path / "direct")
    assert ground_truth.read(tmp_path / "stepped" / "ground_truth.jsonl") == \
        ground_truth.read(tmp_path / "direct" / "ground_truth.jsonl")


def test_advance_stamps_exactly_what_changed(tmp_path: Path) -> None:
    """Every record advance touches carries a stamp after the old clock, and no other does."""
    data_dir = tmp_path / "firm"
    generate(data_dir, scale="small", seed=31, as_of=AS_OF)
    before, erp_before = vendor_state(data_dir), erp_state(data_dir)
    summary = advance(data_dir, 20)
    after, erp_after = vendor_state(data_dir), erp_state(data_dir)
    t0 = parse_date(AS_OF)
    stamped = {
        "hs_objects": lambda r: r["updated_at"] > t0 * 1000,
        "hv_clients": lambda r: r["updated_at"] > t0, "hv_projects": lambda r: r["updated_at"] > t0,
        "hv_time_entries": lambda r: r["updated_at"] > t0, "hv_expenses": lambda r: r["updated_at"] > t0,
        "hv_user_assignments": lambda r: r["updated_at"] > t0,
    }
    for table, is_recent in stamped.items():
        changed = changed_keys(before[table], after[table])
        recent = {k for k, r in after[table].items() if is_recent(r)}
        assert changed == recent, table
        assert changed, f"20 days should change some {table}"
    for table in ("res_partner", "sale_order", "account_move", "account_payment"):
        changed = changed_keys(erp_before[table], erp_after[table])
        recent = {k for k, r in erp_after[table].items() if r["write_date"] > erp_time(t0)}
        assert changed == recent, table
    # Stripe: every changed object is named by an event after the old clock, except customers
    # whose only change is the next invoice number (Stripe sends no event for that).
    changed = changed_keys(before["stripe_objects"], after["stripe_objects"])
    evented = {r["object_id"] for r in after["stripe_events"].values() if r["created"] > t0}
    silent = {k for k in changed - {(i,) for i in evented}
              if after["stripe_objects"][k]["object"] == "customer" and k in before["stripe_objects"]}
    assert changed - silent == {(i,) for i in evented if (i,) in after["stripe_objects"]}
    assert summary.counts["harvest"]["time_entries"] > 0


def _faults(data_dir: Path) -> list[dict]:
    return ground_truth.faults(ground_truth.read(data_dir / "ground_truth.jsonl"))


def test_fault_rates_are_configurable(tmp_path: Path) -> None:
    generate(tmp_path / "clean", scale="small", seed=41, as_of=AS_OF, fault_rates=fault_rates(0.0))
    assert _faults(tmp_path / "clean") == []
    generate(tmp_path / "noisy", scale="small", seed=41, as_of=AS_OF, fault_rates=fault_rates(0.15))
    assert {e["exception_type"] for e in _faults(tmp_path / "noisy")} == set(FAULT_TYPES)


def test_noise_rates_are_configurable_and_move_no_fault(tmp_path: Path) -> None:
    generate(tmp_path / "clean", scale="small", seed=41, as_of=AS_OF, noise_rates=noise_rates(0.0))
    generate(tmp_path / "messy", scale="small", seed=41, as_of=AS_OF, noise_rates=noise_rates(0.5))
    clean = ground_truth.read(tmp_path / "clean" / "ground_truth.jsonl")
    messy = ground_truth.read(tmp_path / "messy" / "ground_truth.jsonl")
    assert ground_truth.valid(clean) == []
    assert {e["noise"] for e in ground_truth.valid(messy)} == set(NOISE_KINDS)
    # the same faults on the same records (the mess may move when an ERP posting makes one visible,
    # and tax changes invoice amounts); `crm_merge` adds the duplicates it later merges away
    def faults(entries: list[dict]) -> set:
        return {(e["fault_id"], e["exception_type"], tuple((r["system"], r["id"]) for r in e["records"]))
                for e in ground_truth.faults(entries) if not e["details"].get("merged_later")}
    assert faults(messy) == faults(clean)
    with pytest.raises(ValueError, match="unknown noise kind 'rounding'"):
        noise_rates(rounding=0.1)


def test_advance_records_new_faults(tmp_path: Path) -> None:
    data_dir = tmp_path / "firm"
    generate(data_dir, scale="small", seed=51, as_of=AS_OF, fault_rates=fault_rates(0.1))
    before = {e["fault_id"] for e in _faults(data_dir)}
    advance(data_dir, 60)
    after = {e["fault_id"] for e in _faults(data_dir)}
    assert before < after


def test_clock_moves_with_advance(firm_a: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(firm_a, copy)
    advance(copy, 3)
    con = store.connect(copy)
    assert store.Clock(con).now_ms == (parse_date(AS_OF) + 3 * DAY) * 1000
    con.close()


def _iso_day(ts: int) -> str:
    return str(np.datetime64(ts, "s").astype("datetime64[D]"))
