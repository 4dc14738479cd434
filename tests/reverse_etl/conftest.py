"""Per-test copies of the session's built small firm (`built_firm`, tests/conftest.py): sandbox
state, warehouse and dlt state, served by their own sandbox server, so each test pushes to a CRM
nothing has written to yet."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest
import requests

from reverse_etl.contract import OBJECTS, to_property_value
from reverse_etl.settings import Settings
from tests.dbt.conftest import Warehouse, served_copy

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Firm:
    """A test's own copy of the firm: its warehouse, its sandbox server, and helpers."""

    w: Warehouse

    @property
    def admin(self) -> str:
        return f"{self.w.server.base_url}/_sandbox"

    def settings(self, **overrides: Any) -> Settings:
        return Settings.from_env(self.w.env(), **overrides)

    def env(self, **knobs: Any) -> dict[str, str]:
        """The environment a `python -m reverse_etl` subprocess needs, plus knobs by setting name."""
        extra = {f"CONCORD_REVERSE_ETL_{k.upper()}": str(v) for k, v in knobs.items()}
        return {**os.environ, **self.w.env(), **extra}

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "reverse_etl", *args], cwd=REPO, env=env or self.env(),
                              capture_output=True, text=True, timeout=120)

    # --- the sandbox ------------------------------------------------------------------------

    def hubspot_requests(self) -> dict[str, int]:
        """HubSpot requests served since the last reset, by method and path."""
        return requests.get(f"{self.admin}/stats", timeout=10).json().get("hubspot", {})

    def batch_update_calls(self, object_type: str) -> int:
        return self.hubspot_requests().get(f"POST /crm/v3/objects/{object_type}/batch/update", 0)

    def reset_requests(self) -> None:
        requests.delete(f"{self.admin}/stats", timeout=10)

    def request_log(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.admin}/requests", timeout=10).json()["requests"]

    def sandbox_settings(self, **values: Any) -> None:
        response = requests.put(f"{self.admin}/settings", json=values, timeout=10)
        assert response.ok, response.text

    def crm_values(self, object_type: str, *, metadata: bool = True) -> dict[str, dict[str, str | None]]:
        """Every live record's contract properties as HubSpot returns them (cleared: None);
        without `metadata`, `financial_status_synced_at` is left out."""
        return crm_values(self.w.server.client_settings(), object_type, metadata=metadata)

    def crm_notes(self) -> list[tuple[str, str | None, set[str]]]:
        """Every live HubSpot note: (id, its concord_event_key, the companies it is associated with)."""
        base = self.w.server.client_settings()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {base['SOURCES__HUBSPOT__ACCESS_TOKEN']}"
        url = f"{base['SOURCES__HUBSPOT__BASE_URL']}/crm/v3/objects/notes"
        out: list[tuple[str, str | None, set[str]]] = []
        params: dict[str, Any] = {"limit": 100, "properties": "concord_event_key", "associations": "companies"}
        while True:
            page = session.get(url, params=params, timeout=10).json()
            for note in page["results"]:
                linked = (note.get("associations") or {}).get("companies", {}).get("results", [])
                out.append((note["id"], note["properties"].get("concord_event_key"), {a["id"] for a in linked}))
            if "paging" not in page:
                return out
            params["after"] = page["paging"]["next"]["after"]

    # --- the warehouse ----------------------------------------------------------------------

    def query(self, sql: str, *params: Any) -> list[tuple]:
        return self.w.query(sql, *params)

    def execute(self, sql: str, *params: Any) -> None:
        with duckdb.connect(str(self.w.path)) as con:
            con.execute(sql, params)

    def model_values(self, object_type: str, *, metadata: bool = True) -> dict[str, dict[str, str | None]]:
        """The sync model as HubSpot should hold it (a cleared value reads back as None)."""
        spec = OBJECTS[object_type]
        wanted = [n for n in spec.names if metadata or n not in spec.metadata_names]
        rows = self.query(f"SELECT {spec.key}, {', '.join(wanted)} FROM {spec.relation}")
        return {row[0]: {n: (to_property_value(v) or None) for n, v in zip(wanted, row[1:])} for row in rows}

    def audit(self, run_id: str) -> set[tuple[str, str, str | None, str]]:
        return set(self.query("SELECT record_id, property, old_value, new_value FROM reverse_etl.audit_log "
                              "WHERE run_id = ?", run_id))

    def audited_records(self, run_id: str, status: str | None = None) -> set[str]:
        return {r for (r,) in self.query("SELECT DISTINCT record_id FROM reverse_etl.audit_log WHERE run_id = ? "
                                         "AND (? IS NULL OR status = ?)", run_id, status, status)}


@pytest.fixture
def firm(built_firm: Warehouse, tmp_path: Path) -> Iterator[Firm]:
    """A copy of the built firm, served by its own sandbox server."""
    with served_copy(built_firm, tmp_path) as warehouse:
        yield Firm(warehouse)


def crm_values(settings: dict[str, str], object_type: str, *, metadata: bool = True
               ) -> dict[str, dict[str, str | None]]:
    """Every live HubSpot record's CRM contract properties, read through HubSpot's API."""
    spec = OBJECTS[object_type]
    wanted = [n for n in spec.names if metadata or n not in spec.metadata_names]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {settings['SOURCES__HUBSPOT__ACCESS_TOKEN']}"
    url = f"{settings['SOURCES__HUBSPOT__BASE_URL']}/crm/v3/objects/{object_type}"
    out: dict[str, dict[str, str | None]] = {}
    params: dict[str, Any] = {"limit": 100, "properties": ",".join(wanted)}
    while True:
        page = session.get(url, params=params, timeout=30).json()
        for record in page["results"]:
            out[record["id"]] = {n: record["properties"].get(n) for n in wanted}
        if "paging" not in page:
            return out
        params["after"] = page["paging"]["next"]["after"]
