"""Records that change their nature between two loads: a HubSpot company merged into another after
the warehouse loaded it is gone from HubSpot but not from the warehouse; the next run must neither
count it as a duplicate nor push to it, and detection stays exact."""

from __future__ import annotations

import numpy as np

from sandbox.lifecycle import advance
from sandbox.world.config import DAY, SCALES, WorldConfig, fault_rates, noise_rates, parse_date
from sandbox.world.derived import HS_MERGED_COMPANY_BASE
from sandbox.world.firm import simulate
from tests.dbt.conftest import build_warehouse
from tests.dbt.test_detection import assert_perfect, detections

SEED = 4
NOISE = noise_rates(crm_merge=0.5)


def a_merge_to_watch() -> tuple[str, int, str]:
    """(as-of date, days to advance, HubSpot id): a second company already typed in at the as-of
    date and merged away within the days after it, late enough in the firm's first year for the
    firm to have some history."""
    config = WorldConfig(seed=SEED, scale=SCALES["small"], start=parse_date("2025-11-01"),
                         fault_rates=fault_rates(), noise_rates=NOISE)
    clients = simulate(config, parse_date("2026-10-01")).clients
    typed, merged = clients["crm_duplicate_at"], clients["crm_merged_at"]
    candidates = [i for i in np.argsort(typed).tolist() if parse_date("2026-04-01") <= typed[i] < merged[i] < 2**62]
    i = candidates[0]
    as_of_day = int(typed[i]) // DAY + 1
    assert as_of_day * DAY < merged[i], "typed and merged on the same day"
    days = int(merged[i]) // DAY + 2 - as_of_day
    return str(np.datetime64(as_of_day, "D")), days, str(HS_MERGED_COMPANY_BASE + i)


def test_a_company_merged_away_after_a_load_is_no_duplicate_and_no_push_target(tmp_path) -> None:
    as_of, days, loser = a_merge_to_watch()
    losers = [loser]
    for warehouse in build_warehouse(tmp_path, scale="small", seed=SEED, as_of=as_of, noise_rates=NOISE):
        warehouse.build_models()
        before = {r["source_record_id"] for r in detections(warehouse) if r["exception_type"] == "duplicate_customer"}
        assert set(losers) <= before, "before the merge the second company is a duplicate"
        assert_perfect(warehouse, "before the merge")

        advance(warehouse.data_dir, days)
        warehouse.ingest()
        warehouse.build_models()
        raw = {str(i) for (i,) in warehouse.query("select id from raw_hubspot.companies")}
        assert set(losers) <= raw, "the warehouse still holds what it loaded before the merge"
        synced = {i for (i,) in warehouse.query("select hubspot_company_id from crm_sync.sync_hubspot__companies")}
        assert not set(losers) & synced
        after = {r["source_record_id"] for r in detections(warehouse) if r["exception_type"] == "duplicate_customer"}
        assert not set(losers) & after
        assert_perfect(warehouse, f"{days} days later, after the merge")


def _world(noise: dict[str, float]):
    config = WorldConfig(seed=SEED, scale=SCALES["small"], start=parse_date("2025-11-01"),
                         fault_rates=fault_rates(), noise_rates=noise)
    return simulate(config, parse_date("2026-10-01"))


def _watch(born: np.ndarray, gone: np.ndarray, due: np.ndarray | None = None) -> tuple[int, str, int]:
    """(record, as-of date, days to advance): the first record (from April on) alive at the end
    of the day after it was born and gone by the second run (which is also past `due`)."""
    for i in np.argsort(born).tolist():
        as_of_day = int(born[i]) // DAY + 1
        if parse_date("2026-04-01") <= born[i] and as_of_day * DAY < gone[i] < 2**62:
            end = max(int(gone[i]) // DAY + 2, int(due[i]) // DAY + 1 if due is not None else 0)
            return i, str(np.datetime64(as_of_day, "D")), end - as_of_day
    raise LookupError("no record born and gone on different days")


STRIPE_NOISE = noise_rates(stripe_delete=0.5)


def test_a_stripe_customer_deleted_after_a_load_is_no_duplicate(tmp_path) -> None:
    """Billing types a client in twice and deletes the second customer after Concord loaded it:
    a duplicate before, none after; the warehouse keeps the row, marked deleted."""
    from sandbox.world.derived import derive

    world = _world(STRIPE_NOISE)
    d = derive(world)
    i, as_of, days = _watch(d.extra_stripe_customer_at, d.extra_stripe_customer_deleted_at)
    second = d.extra_stripe_customer_id[i]
    for warehouse in build_warehouse(tmp_path, scale="small", seed=SEED, as_of=as_of, noise_rates=STRIPE_NOISE):
        warehouse.build_models()
        before = {r["source_record_id"] for r in detections(warehouse) if r["exception_type"] == "duplicate_customer"}
        assert second in before, "before its deletion the second customer is a duplicate"
        assert_perfect(warehouse, "before the deletion")

        advance(warehouse.data_dir, days)
        warehouse.ingest()
        warehouse.build_models()
        assert warehouse.query("select deleted from raw_stripe.customers where id = ?", second) == [(True,)]
        after = {r["source_record_id"] for r in detections(warehouse) if r["exception_type"] == "duplicate_customer"}
        assert second not in after
        assert_perfect(warehouse, f"{days} days later, after the deletion")


HARVEST_NOISE = noise_rates(harvest_delete=0.2)


def test_time_deleted_in_harvest_after_a_load_is_no_longer_counted(tmp_path) -> None:
    """A copy of an entry, approved and loaded, then deleted in Harvest (which keeps no trace):
    the next run neither values nor reports it once its month is due, and the raw row stays."""
    from sandbox.world.derived import HV_ENTRY_IN_ERROR_BASE

    copies = _world(HARVEST_NOISE).entries_in_error
    month = copies["spent_day"].astype("datetime64[D]").astype("datetime64[M]")
    due = ((month + 1).astype("datetime64[D]").astype(np.int64) + 16) * DAY  # `tm_billing_sla_days`
    k, as_of, days = _watch(copies["approved_at"], copies["deleted_at"], due)
    copy = HV_ENTRY_IN_ERROR_BASE + k
    for warehouse in build_warehouse(tmp_path, scale="small", seed=SEED, as_of=as_of, noise_rates=HARVEST_NOISE):
        warehouse.build_models()
        assert warehouse.query("select is_approved from core.time_entries where time_entry_id = ?", copy) == [(True,)]
        assert_perfect(warehouse, "the copy approved")

        advance(warehouse.data_dir, days)
        warehouse.ingest()
        warehouse.build_models()
        assert warehouse.query("select count(*) from raw_harvest.time_entries where id = ?", copy) == [(1,)]
        assert warehouse.query("select count(*) from core.time_entries where time_entry_id = ?", copy) == [(0,)]
        assert_perfect(warehouse, f"{days} days later, the copy deleted and its month due")
