"""Fixtures for loading the sandbox firm into a real DuckDB warehouse through the real sources."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import duckdb
import pytest
import requests

from sandbox.lifecycle import generate
from sandbox.server.app import RunningServer

AS_OF = "2026-10-01"


@pytest.fixture(scope="module")
def firm(tmp_path_factory) -> Path:
    """A small firm, generated once per test module (advance it only in a copy or a fresh one)."""
    data_dir = tmp_path_factory.mktemp("firm") / "sandbox"
    generate(data_dir, scale="small", seed=9, as_of=AS_OF)
    return data_dir


@pytest.fixture
def fresh_firm(tmp_path: Path) -> Path:
    """A small firm of the test's own, free to advance or corrupt."""
    data_dir = tmp_path / "sandbox"
    generate(data_dir, scale="small", seed=9, as_of=AS_OF)
    return data_dir


class Sandbox:
    """A running sandbox and the environment that points the sources at it."""

    def __init__(self, server: RunningServer, warehouse: Path, monkeypatch: pytest.MonkeyPatch):
        self.server = server
        self.warehouse = warehouse
        self.settings = server.client_settings()
        for name, value in self.settings.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CONCORD_WAREHOUSE", str(warehouse))

    @property
    def admin(self) -> str:
        return f"{self.server.base_url}/_sandbox"

    def requests_made(self, system: str) -> dict[str, int]:
        """Requests the sandbox served to `system` since the last reset, by method and path."""
        return requests.get(f"{self.admin}/stats", timeout=10).json().get(system, {})

    def reset_requests(self) -> None:
        requests.delete(f"{self.admin}/stats", timeout=10)

    def query(self, sql: str, *params) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql, params).fetchall()


@pytest.fixture
def sandbox(request, serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """Serve the test's firm (`fresh_firm` if the test asks for it, else the module's `firm`)
    and point the sources and the warehouse at it."""
    data_dir = request.getfixturevalue("fresh_firm" if "fresh_firm" in request.fixturenames else "firm")
    yield Sandbox(serve(data_dir), tmp_path / "warehouse.duckdb", monkeypatch)
