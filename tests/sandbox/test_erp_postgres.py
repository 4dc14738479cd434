"""The ERP database in PostgreSQL, given by URL, holds exactly what the SQLite default holds."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from sandbox.lifecycle import advance, generate
from tests.sandbox.snapshots import erp_state

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url():
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    name = f"concord_erp_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at 127.0.0.1:5432 ({exc})")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def test_postgres_erp_matches_sqlite_erp(tmp_path: Path, postgres_url: str) -> None:
    generate(tmp_path / "pg", scale="small", seed=8, as_of="2026-09-01", erp_url=postgres_url)
    generate(tmp_path / "lite", scale="small", seed=8, as_of="2026-09-01")
    advance(tmp_path / "pg", 15)
    advance(tmp_path / "lite", 15)
    in_postgres, in_sqlite = erp_state(tmp_path / "pg"), erp_state(tmp_path / "lite")
    assert in_postgres.keys() == in_sqlite.keys()
    for table in in_sqlite:
        assert len(in_postgres[table]) == len(in_sqlite[table]), table
        assert in_postgres[table] == in_sqlite[table], table
    assert len(in_postgres["account_move"]) > 100
