"""Shared fixtures: sandbox state in a temp dir and servers on free loopback ports."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from sandbox import store
from sandbox.credentials import new_credentials
from sandbox.server.app import RunningServer
from sandbox.server.core import ServerSettings

# 2026-11-01T00:00:00Z: where hand-seeded test states put the sandbox clock.
TEST_NOW_MS = 1_793_491_200_000


def make_empty_state(data_dir: Path, now_ms: int = TEST_NOW_MS) -> Path:
    """A data dir with the schema, fresh credentials and the clock at `now_ms`, no records."""
    con = store.connect(data_dir, create=True)
    store.set_meta(con, "credentials", new_credentials())
    store.set_meta(con, "now_ms", now_ms)
    con.close()
    return data_dir


@pytest.fixture
def empty_state(tmp_path: Path) -> Path:
    return make_empty_state(tmp_path / "sandbox")


@pytest.fixture
def serve():
    """Start servers over data dirs: `server = serve(data_dir, settings=...)`; all stop at teardown."""
    running: list[RunningServer] = []

    def start(data_dir: Path, settings: ServerSettings | None = None) -> RunningServer:
        server = RunningServer(data_dir, settings=settings).__enter__()
        running.append(server)
        return server

    yield start
    for server in running:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def loaded_warehouse(tmp_path_factory) -> Iterator:
    """The small firm (seed 9), served, and loaded once per session by the real sources; the
    tests that change it work on copies (`tests.dbt.conftest.served_copy`, `copy_of`)."""
    from tests.dbt.conftest import build_warehouse

    yield from build_warehouse(tmp_path_factory.mktemp("firm"))


@pytest.fixture(scope="session")
def built_firm(loaded_warehouse):
    """The session's firm after a full `dbt build` (seeds, models, snapshots, tests): the
    starting point of the dbt, reverse-ETL and orchestration tests."""
    loaded_warehouse.dbt("build")
    return loaded_warehouse
