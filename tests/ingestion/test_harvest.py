"""The Harvest source against the sandbox: every record once, only changes after, faults survived."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
import requests

import ingestion.harvest as harvest
from ingestion.harvest.helpers import sweep_start
from ingestion.harvest.settings import DELETION_WINDOW_DAYS, PER_PAGE
from ingestion.http import CredentialsRejected
from ingestion.warehouse import run_source
from sandbox.lifecycle import advance
from tests.dbt.conftest import Warehouse

TABLES = {"clients": "hv_clients", "projects": "hv_projects", "users": "hv_users", "tasks": "hv_tasks",
          "time_entries": "hv_time_entries", "expenses": "hv_expenses"}


def sandbox_rows(data_dir: Path, table: str, columns: str = "id") -> set[tuple]:
    con = sqlite3.connect(data_dir / "sandbox.sqlite")
    try:
        return set(con.execute(f"SELECT {columns} FROM {table}").fetchall())
    finally:
        con.close()


def window_start(data_dir: Path) -> str:
    """The first spent date the deletion sweep lists: the window's days before the newest change
    of a time entry (the sandbox keeps `updated_at` in unix seconds)."""
    con = sqlite3.connect(data_dir / "sandbox.sqlite")
    try:
        (day,), = con.execute("SELECT date(max(updated_at), 'unixepoch', ?) FROM hv_time_entries",
                              (f"-{DELETION_WINDOW_DAYS} days",))
        return day
    finally:
        con.close()


def entries_in_window(data_dir: Path) -> set[int]:
    """Ids of the sandbox's time entries the deletion sweep lists."""
    con = sqlite3.connect(data_dir / "sandbox.sqlite")
    try:
        return {i for (i,) in con.execute("SELECT id FROM hv_time_entries WHERE spent_date >= ?",
                                          (window_start(data_dir),))}
    finally:
        con.close()


def delete_through_the_api(entry_id: int) -> None:
    response = requests.delete(f"{os.environ['SOURCES__HARVEST__BASE_URL']}/time_entries/{entry_id}", timeout=10,
                               headers={"Authorization": f"Bearer {os.environ['SOURCES__HARVEST__ACCESS_TOKEN']}",
                                        "Harvest-Account-Id": os.environ["SOURCES__HARVEST__ACCOUNT_ID"],
                                        "User-Agent": "concord-tests"})
    assert response.status_code == 200, response.text


def landed(sandbox, table: str, columns: str = "id") -> list[tuple]:
    return sandbox.query(f"SELECT {columns} FROM raw_harvest.{table}")


def content(sandbox) -> dict[str, list[tuple]]:
    """Every landed row minus dlt's bookkeeping, for comparing two warehouses."""
    out = {}
    for table in TABLES:
        columns = [c for (c,) in sandbox.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw_harvest' "
            "AND table_name = ? AND column_name NOT LIKE '\\_dlt%' ESCAPE '\\' ORDER BY column_name", table)]
        out[table] = sandbox.query(f"SELECT {', '.join(columns)} FROM raw_harvest.{table} ORDER BY id")
    return out


def test_source_is_built_without_settings_and_names_a_missing_one(monkeypatch, tmp_path: Path) -> None:
    for name in ("SOURCES__HARVEST__BASE_URL", "SOURCES__HARVEST__ACCESS_TOKEN", "SOURCES__HARVEST__ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .dlt/ files to fall back on
    source = harvest.source()
    assert set(source.resources) == set(TABLES)  # the presence list is landed by `time_entries`
    monkeypatch.setenv("CONCORD_WAREHOUSE", str(tmp_path / "w.duckdb"))
    with pytest.raises(Exception, match="base_url"):
        run_source(harvest.source(), "harvest")


def test_first_run_lands_exactly_the_sandbox_records(sandbox, firm: Path) -> None:
    started = time.perf_counter()
    report = run_source(harvest.source(), "harvest")
    elapsed = time.perf_counter() - started
    for table, sandbox_table in TABLES.items():
        ids = landed(sandbox, table)
        assert len(ids) == len(set(ids)), f"duplicates in {table}"
        assert set(ids) == sandbox_rows(firm, sandbox_table), table
    entries = sandbox_rows(firm, "hv_time_entries", "id, spent_date, hours, is_closed, is_billed, project_id")
    assert set(landed(sandbox, "time_entries", "id, strftime(spent_date, '%Y-%m-%d'), hours, is_closed::int, "
                                               "is_billed::int, project__id")) == entries
    assert report.quarantined == 0
    print(f"\nharvest first run: {sum(report.row_counts.values()):,} rows in {elapsed:.2f} s "
          f"({sum(report.row_counts.values()) / elapsed:,.0f} rows/s)")


def test_second_run_lands_nothing_and_asks_once_per_list(sandbox, firm: Path) -> None:
    """Nothing but the list of the time entries that exist in the deletion window, read after the
    one page of time entries changed since the last run."""
    run_source(harvest.source(), "harvest")
    sandbox.reset_requests()
    report = run_source(harvest.source(), "harvest")
    in_window = entries_in_window(firm)
    assert report.row_counts == {"time_entry_presence": len(in_window)}
    pages = -(-len(in_window) // PER_PAGE)
    assert sandbox.requests_made("harvest") == {**{f"GET /v2/{table}": 1 for table in TABLES},
                                                "GET /v2/time_entries": 1 + pages}


def test_after_advance_exactly_the_changes_arrive(sandbox, fresh_firm: Path) -> None:
    run_source(harvest.source(), "harvest")
    before = {t: sandbox_rows(fresh_firm, s, "id, updated_at") for t, s in TABLES.items()}
    advance(fresh_firm, 3)
    after = {t: sandbox_rows(fresh_firm, s, "id, updated_at") for t, s in TABLES.items()}
    report = run_source(harvest.source(), "harvest")
    for table in TABLES:
        changed = {row[0] for row in after[table] - before[table]}
        assert report.rows(table) == len(changed), table
        ids = landed(sandbox, table)
        assert len(ids) == len(set(ids)), f"duplicates in {table}"
        assert {i for (i,) in ids} == {row[0] for row in after[table]}, table
        stamps = set(landed(sandbox, table, "id, epoch(updated_at)::bigint"))
        assert stamps == after[table], f"{table}: landed stamps differ from the sandbox's"
    assert report.rows("time_entries") > 0


def test_rate_limits_and_server_faults_change_nothing(sandbox, firm: Path, tmp_path: Path, monkeypatch) -> None:
    run_source(harvest.source(), "harvest")
    clean = content(sandbox)
    monkeypatch.setenv("CONCORD_WAREHOUSE", str(tmp_path / "faulty.duckdb"))
    sandbox.warehouse = tmp_path / "faulty.duckdb"
    settings = sandbox.server.settings
    settings.rate_limits = True
    settings.faults.error_rate = 0.1
    settings.faults.seed = 7
    sandbox.reset_requests()
    run_source(harvest.source(), "harvest")
    settings.rate_limits, settings.faults.error_rate = False, 0.0
    assert content(sandbox) == clean
    served = sum(sandbox.requests_made("harvest").values())
    assert served > len(TABLES), "fault mode should have forced retries"


def test_wrong_token_fails_fast_naming_the_setting(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("SOURCES__HARVEST__ACCESS_TOKEN", "0000000.pt.wrong")
    started = time.perf_counter()
    with pytest.raises(CredentialsRejected) as failure:
        run_source(harvest.source(), "harvest")
    assert time.perf_counter() - started < 2
    message = str(failure.value)
    assert message.startswith("harvest: ") and "SOURCES__HARVEST__ACCESS_TOKEN" in message
    assert "0000000.pt.wrong" not in message


def test_a_broken_record_is_quarantined_and_its_page_still_loads(sandbox, fresh_firm: Path) -> None:
    con = sqlite3.connect(fresh_firm / "sandbox.sqlite")
    broken_id, = con.execute("SELECT id FROM hv_time_entries ORDER BY id LIMIT 1 OFFSET 100").fetchone()
    con.execute("UPDATE hv_time_entries SET spent_date = '2026-13-45' WHERE id = ?", (broken_id,))
    con.execute("UPDATE hv_clients SET currency = 'XYZ' WHERE id = (SELECT min(id) FROM hv_clients)")
    con.commit()
    total, = con.execute("SELECT count(*) FROM hv_time_entries").fetchone()
    con.close()
    report = run_source(harvest.source(), "harvest")
    assert report.quarantined == 2
    assert report.quarantined_by_table == {"time_entries": 1, "clients": 1}
    rows = sandbox.query("SELECT source_table, record_id, reason, raw_record, _dlt_load_id "
                         "FROM raw_harvest.quarantine ORDER BY source_table")
    (table, record_id, reason, raw, load_id) = rows[1]
    assert (table, record_id) == ("time_entries", str(broken_id))
    assert "spent_date" in reason and json.loads(raw)["spent_date"] == "2026-13-45"
    assert load_id in report.load_ids
    assert "currency" in rows[0][2]
    ids = {i for (i,) in landed(sandbox, "time_entries")}
    assert broken_id not in ids and len(ids) == total - 1


def test_the_sweep_window_is_counted_back_from_the_newest_change_seen() -> None:
    assert sweep_start("2026-10-01T08:15:00Z", 60) == dt.date(2026, 8, 2)
    assert sweep_start("2026-10-01T23:59:59Z", 60) == dt.date(2026, 8, 2)  # the stamp's UTC day
    assert sweep_start("2026-03-01T00:00:00Z", 1) == dt.date(2026, 2, 28)
    assert sweep_start(None, 60) is None  # nothing walked yet: no anchor, no sweep
    assert sweep_start("2026-10-01T08:15:00Z", 0) is None  # the sweep turned off


def test_an_entry_deleted_in_harvest_is_left_out_by_staging(sandbox, fresh_firm: Path) -> None:
    """Harvest reports no deletions: the next run's list of the entries in the window lacks the
    one deleted, and `stg_harvest__time_entries` leaves it out while its raw row stays. An entry
    older than the window is not swept: its deletion is not seen, and no entry of those spent
    dates is ever left out."""
    run_source(harvest.source(), "harvest")
    swept_from = window_start(fresh_firm)
    assert {i for (i,) in landed(sandbox, "time_entry_presence")} == entries_in_window(fresh_firm)
    con = sqlite3.connect(fresh_firm / "sandbox.sqlite")
    (gone,), = con.execute("SELECT id FROM hv_time_entries WHERE is_locked = 0 ORDER BY spent_date DESC LIMIT 1")
    (old,), = con.execute("SELECT id FROM hv_time_entries WHERE spent_date < ? ORDER BY spent_date DESC LIMIT 1",
                          (swept_from,))
    con.execute("DELETE FROM hv_time_entries WHERE id = ?", (old,))  # locked (approved): only the sandbox can
    con.commit()
    con.close()
    assert gone in entries_in_window(fresh_firm)
    delete_through_the_api(gone)

    run_source(harvest.source(), "harvest")
    listed = {i for (i,) in landed(sandbox, "time_entry_presence")}
    assert listed == entries_in_window(fresh_firm) and gone not in listed
    assert sandbox.query("SELECT DISTINCT strftime(swept_from, '%Y-%m-%d') "
                         "FROM raw_harvest.time_entry_presence") == [(swept_from,)]
    assert {(gone,), (old,)} <= set(landed(sandbox, "time_entries"))

    warehouse = Warehouse(fresh_firm, sandbox.warehouse, sandbox.server)
    warehouse.build_models("--select", "stg_harvest__time_entries")
    staged = {i for (i,) in warehouse.query("SELECT time_entry_id FROM staging.stg_harvest__time_entries")}
    assert staged == {i for (i,) in landed(sandbox, "time_entries")} - {gone}
    assert old in staged


def test_a_window_of_zero_days_turns_the_sweep_off(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("SOURCES__HARVEST__TIME_ENTRIES__DELETION_WINDOW_DAYS", "0")
    sandbox.reset_requests()
    report = run_source(harvest.source(), "harvest")
    assert report.rows("time_entries") > 0 and "time_entry_presence" not in report.row_counts
    assert sandbox.requests_made("harvest")["GET /v2/time_entries"] == -(-report.rows("time_entries") // PER_PAGE)
