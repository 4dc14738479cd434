"""The change-share guard counts real changes only: not new records, not days overdue ticking on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from reverse_etl.contract import COMPANIES
from reverse_etl.diff import compute
from reverse_etl.guards import evaluate
from reverse_etl.settings import Settings

NOW = dt.datetime(2026, 11, 27, 12, tzinfo=dt.timezone.utc)
FRESH = {"billing": NOW - dt.timedelta(hours=1), "erp": NOW - dt.timedelta(hours=1)}


def row(balance: str = "100.00", days: str = "0") -> dict[str, str]:
    values = {name: "" for name in COMPANIES.names}
    return {**values, "ar_balance": balance, "ar_oldest_overdue_days": days, "financial_status": "good_standing"}


def verdict(rows: dict[str, dict[str, str]], confirmed: dict[str, dict[str, str]], **knobs):
    settings = Settings(base_url="http://crm.invalid", access_token="t", warehouse=Path("w.duckdb"), **knobs)
    diff = compute(COMPANIES, rows, confirmed)
    return diff, evaluate(diff, first_push=not confirmed, loaded_at=FRESH, settings=settings, now=NOW)


def test_a_mass_change_of_known_records_is_refused() -> None:
    confirmed = {str(i): row() for i in range(20)}
    diff, report = verdict({str(i): row(balance="0.00") for i in range(20)}, confirmed)
    assert len(diff.changes) == 20 and report.refusals and "20 of 20 records (100%)" in report.refusals[0]


def test_new_records_and_ticking_days_overdue_are_no_alarm() -> None:
    confirmed = {str(i): row(days="3") for i in range(20)}
    rows = {str(i): row(days="4") for i in range(20)}  # a day passed: every overdue client ticks on
    rows |= {f"n{i}": row() for i in range(30)}  # the rest of a push the daily limit cut short
    rows["0"] = row(balance="0.00", days="4")  # and one real change
    diff, report = verdict(rows, confirmed)
    assert len(diff.changes) == 50 and (diff.new, diff.routine) == (30, 19)
    assert report.refusals == [] and report.change_share == 1 / 20


def test_stale_or_missing_sources_are_refused() -> None:
    settings = Settings(base_url="http://crm.invalid", access_token="t", warehouse=Path("w.duckdb"))
    diff = compute(COMPANIES, {"1": row()}, {})
    stale = {"billing": NOW - dt.timedelta(hours=30), "erp": None}
    refusals = evaluate(diff, first_push=True, loaded_at=stale, settings=settings, now=NOW).refusals
    assert any("billing data last synced 30.0 h ago" in r for r in refusals)
    assert any("erp data (raw_erp) was never loaded" in r for r in refusals)
