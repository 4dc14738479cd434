"""The ERP source against the sandbox's database, in SQLite and in PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

import ingestion.erp as erp
from ingestion.erp.settings import LINK_TABLES, TABLES
from ingestion.warehouse import CRASH_ENV, run_source
from sandbox import erp_schema, store
from sandbox.lifecycle import advance, generate
from tests.sandbox.test_erp_postgres import postgres_url  # noqa: F401 - a fixture

ALL_TABLES = {**TABLES, **{t: k[0] for t, k in LINK_TABLES.items()}}


def erp_rows(data_dir: Path, table: str, columns: str) -> set[tuple]:
    con = store.connect(data_dir)
    url = store.erp_url(con, data_dir)
    con.close()
    engine = erp_schema.engine_for(url)
    with engine.connect() as conn:
        rows = {tuple(r) for r in conn.execute(text(f"SELECT {columns} FROM {table}"))}
    engine.dispose()
    return rows


def assert_mirrors_erp(sandbox, data_dir: Path) -> None:
    for table in TABLES:
        landed = sandbox.query(f"SELECT id, write_date FROM raw_erp.{table}")
        assert len(landed) == len({i for i, _ in landed}), f"duplicates in {table}"
        source = {(i, w if isinstance(w, dt.datetime) else dt.datetime.fromisoformat(w))
                  for i, w in erp_rows(data_dir, table, "id, write_date")}
        assert {(i, w.replace(tzinfo=None)) for i, w in landed} == source, table
    links = set(sandbox.query("SELECT invoice_id, payment_id FROM raw_erp.account_move__account_payment"))
    assert links == erp_rows(data_dir, "account_move__account_payment", "invoice_id, payment_id")


def test_first_run_mirrors_the_erp_and_a_second_changes_nothing(sandbox, firm: Path) -> None:
    run_source(erp.source(), "erp")
    assert_mirrors_erp(sandbox, firm)
    before = sandbox.query("SELECT * EXCLUDE (_dlt_load_id) FROM raw_erp.account_move ORDER BY id")
    report = run_source(erp.source(), "erp")
    assert_mirrors_erp(sandbox, firm)
    after = sandbox.query("SELECT * EXCLUDE (_dlt_load_id) FROM raw_erp.account_move ORDER BY id")
    assert after == before
    # Only the look-back window is read again (and the link table, which has no write_date).
    newest = max(w for (w,) in sandbox.query("SELECT write_date FROM raw_erp.account_move"))
    in_window = sum(1 for (w,) in sandbox.query("SELECT write_date FROM raw_erp.account_move")
                    if w >= newest - dt.timedelta(hours=1))
    assert report.rows("account_move") == in_window


def test_after_advance_exactly_the_erp_as_it_now_stands(sandbox, fresh_firm: Path) -> None:
    run_source(erp.source(), "erp")
    advance(fresh_firm, 3)
    report = run_source(erp.source(), "erp")
    assert_mirrors_erp(sandbox, fresh_firm)
    assert report.rows("account_move") > 0 and report.rows("res_currency_rate") > 0


def test_postgres_erp(tmp_path: Path, postgres_url: str, serve, monkeypatch) -> None:  # noqa: F811
    data_dir = tmp_path / "firm"
    generate(data_dir, scale="small", seed=9, as_of="2026-10-01", erp_url=postgres_url)
    from tests.ingestion.conftest import Sandbox

    sandbox = Sandbox(serve(data_dir), tmp_path / "warehouse.duckdb", monkeypatch)
    assert sandbox.settings["SOURCES__ERP__CREDENTIALS"].startswith("postgresql")
    run_source(erp.source(), "erp")
    assert_mirrors_erp(sandbox, data_dir)


@pytest.mark.parametrize("step", ["extract", "normalize"])
def test_a_killed_load_resumes_with_nothing_lost_or_doubled(sandbox, fresh_firm: Path, step: str) -> None:
    run_source(erp.source(), "erp")
    advance(fresh_firm, 5)
    env = {**os.environ, CRASH_ENV: step}
    crashed = subprocess.run([sys.executable, "-m", "ingestion", "erp"], env=env, capture_output=True, text=True)
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    advance(fresh_firm, 2)  # the world moves on while the load lies interrupted
    report = run_source(erp.source(), "erp")
    assert report.resumed and report.rows("account_move") > 0
    assert_mirrors_erp(sandbox, fresh_firm)
