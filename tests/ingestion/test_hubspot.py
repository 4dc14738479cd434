"""The HubSpot source against the sandbox: real HTTP, real DuckDB, the sandbox's own state as truth."""

from __future__ import annotations

import datetime as dt
import gzip
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import requests
from dlt.pipeline.exceptions import PipelineStepFailed

from ingestion import hubspot
from ingestion.http import CredentialsRejected
from ingestion.hubspot import settings
from ingestion.warehouse import LoadReport, pipelines_dir, run_source
from sandbox.hubspot_properties import SYSTEM_COLUMNS
from sandbox.lifecycle import advance

TYPES = settings.OBJECT_TYPES
DATA_TABLES = ("companies", "contacts", "deals", "contacts__associations", "deals__associations", "properties")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


# --- helpers ---------------------------------------------------------------------------------


def _run() -> LoadReport:
    return run_source(hubspot.source(), "hubspot")


def _state(data_dir: Path, sql: str, *params: Any) -> list[tuple]:
    con = sqlite3.connect(data_dir / "sandbox.sqlite")
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _objects(data_dir: Path) -> dict[tuple[str, str], tuple]:
    """(type, id) -> (updated_at, archived, archived_at, properties) of every sandbox record."""
    rows = _state(data_dir, "SELECT object_type, id, updated_at, archived, archived_at, properties FROM hs_objects "
                            "WHERE object_type IN ('companies', 'contacts', 'deals')")
    return {(t, str(i)): (u, bool(a), aa, orjson.loads(p)) for t, i, u, a, aa, p in rows}


def _sandbox_associations(data_dir: Path, from_type: str) -> set[tuple]:
    return {(str(f), t, str(to), type_id, label) for f, t, to, type_id, label in _state(
        data_dir, "SELECT from_id, to_type, to_id, type_id, label FROM hs_associations "
                  "WHERE from_type = ? AND to_type = 'companies'", from_type)}


def _rows(warehouse: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _warehouse_associations(warehouse: Path, from_type: str) -> set[tuple]:
    return {(r["id"], r["to_type"], r["to_id"], r["type_id"], r["label"]) for r in _rows(
        warehouse, f"SELECT p.id, a.to_type, a.to_id, a.type_id, a.label FROM raw_hubspot.{from_type} p "
                   f"JOIN raw_hubspot.{from_type}__associations a ON a._dlt_parent_id = p._dlt_id")}


def _ms(value: dt.datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // dt.timedelta(milliseconds=1)


def _assert_warehouse_equals_sandbox(warehouse: Path, data_dir: Path) -> None:
    """Every record once, archived ones marked, every property value and association as the sandbox has it."""
    truth = _objects(data_dir)
    definitions = {t: [n for (n,) in _state(data_dir, "SELECT name FROM hs_properties WHERE object_type = ? "
                                                      "AND archived = 0", t)] for t in TYPES}
    for object_type in TYPES:
        landed = _rows(warehouse, f"SELECT * FROM raw_hubspot.{object_type}")
        ids = [r["id"] for r in landed]
        assert len(ids) == len(set(ids)), f"duplicate {object_type} ids"
        assert set(ids) == {i for t, i in truth if t == object_type}, object_type
        for row in landed:
            updated_at, archived, archived_at, stored = truth[(object_type, row["id"])]
            assert (_ms(row["updated_at"]), row["archived"], _ms(row["archived_at"])) == \
                (updated_at, archived, archived_at), (object_type, row["id"])
            for name in definitions[object_type]:
                if name not in SYSTEM_COLUMNS[object_type]:
                    assert row.get(name) == stored.get(name), (object_type, row["id"], name)
    for from_type in settings.ASSOCIATED:
        assert _warehouse_associations(warehouse, from_type) == _sandbox_associations(data_dir, from_type)


def _pages(n: int) -> int:
    return max(1, math.ceil(n / settings.LIST_LIMIT))


def _data_rows(report: LoadReport) -> dict[str, int]:
    return {table: report.rows(table) for table in DATA_TABLES if report.rows(table)}


def _api(sandbox, method: str, path: str, body: Any = None) -> Any:
    token = sandbox.settings["SOURCES__HUBSPOT__ACCESS_TOKEN"]
    response = requests.request(method, sandbox.settings["SOURCES__HUBSPOT__BASE_URL"] + path, json=body,
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


# --- configuration ------------------------------------------------------------------------------


@pytest.fixture
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SOURCES__HUBSPOT__BASE_URL", "SOURCES__HUBSPOT__ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_source_is_created_without_settings(no_settings) -> None:
    source = hubspot.source()
    assert set(source.resources) == {"companies", "contacts", "deals", "properties"}


def test_a_run_without_settings_names_the_missing_ones(no_settings, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CONCORD_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    with pytest.raises(PipelineStepFailed) as failure:
        _run()
    assert "SOURCES__HUBSPOT__BASE_URL" in str(failure.value)
    assert "SOURCES__HUBSPOT__ACCESS_TOKEN" in str(failure.value)


# --- loads ----------------------------------------------------------------------------------------


def test_first_run_lands_the_sandbox_and_an_unchanged_second_run_lands_nothing(sandbox, firm, caplog) -> None:
    caplog.set_level("DEBUG")
    sandbox.reset_requests()
    first = _run()

    _assert_warehouse_equals_sandbox(sandbox.warehouse, firm)
    defined = {(t, n) for t, n in _state(firm, "SELECT object_type, name FROM hs_properties WHERE archived = 0 "
                                               "AND object_type IN ('companies', 'contacts', 'deals')")}
    assert {(r["object_type"], r["name"]) for r in _rows(
        sandbox.warehouse, "SELECT object_type, name FROM raw_hubspot.properties")} == defined
    assert first.quarantined == 0
    live = dict(_state(firm, "SELECT object_type, count(*) FROM hs_objects WHERE archived = 0 GROUP BY 1"))
    gone = dict(_state(firm, "SELECT object_type, count(*) FROM hs_objects WHERE archived = 1 GROUP BY 1"))
    assert sandbox.requests_made("hubspot") == {
        **{f"GET /crm/v3/properties/{t}": 1 for t in TYPES},
        **{f"POST /crm/v3/objects/{t}/search": 1 for t in TYPES},  # the high-water mark
        **{f"GET /crm/v3/objects/{t}": _pages(live.get(t, 0)) + _pages(gone.get(t, 0)) for t in TYPES},
    }
    rows = sum(first.row_counts.values())
    print(f"\nhubspot first run: {rows} rows in {first.seconds:.2f} s = {rows / first.seconds:,.0f} rows/s, "
          f"{sum(sandbox.requests_made('hubspot').values())} requests")

    sandbox.reset_requests()
    second = _run()
    assert _data_rows(second) == {}
    assert sandbox.requests_made("hubspot") == {
        **{f"GET /crm/v3/properties/{t}": 1 for t in TYPES},
        **{f"POST /crm/v3/objects/{t}/search": 1 for t in TYPES},
        **{f"GET /crm/v3/objects/{t}": _pages(gone.get(t, 0)) for t in TYPES},  # newly archived?
    }
    _assert_warehouse_equals_sandbox(sandbox.warehouse, firm)
    _assert_token_nowhere(sandbox, caplog.text)


def _assert_token_nowhere(sandbox, log_text: str) -> None:
    token = sandbox.settings["SOURCES__HUBSPOT__ACCESS_TOKEN"]
    assert token not in log_text
    with duckdb.connect(str(sandbox.warehouse), read_only=True) as con:
        columns = con.execute("SELECT table_schema, table_name, column_name FROM information_schema.columns "
                              "WHERE data_type = 'VARCHAR'").fetchall()
        for schema, table, column in columns:
            (hits,) = con.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}" LIKE ?',
                                  [f"%{token}%"]).fetchone()
            assert hits == 0, f"token in {schema}.{table}.{column}"
    for path in pipelines_dir(sandbox.warehouse).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            assert token.encode() not in data, path


def test_after_advance_exactly_the_changed_records_are_merged(sandbox, fresh_firm) -> None:
    _run()
    before = _objects(fresh_firm)
    advance(fresh_firm, 3)
    after = _objects(fresh_firm)
    changed = {t: {i for (kind, i), v in after.items() if kind == t and before.get((kind, i)) != v} for t in TYPES}
    assert any(changed.values()), "three days should change something"

    report = _run()
    load_id = report.load_ids[-1]
    for object_type in TYPES:
        landed = [r["id"] for r in _rows(sandbox.warehouse, f"SELECT id FROM raw_hubspot.{object_type} "
                                                            f"WHERE _dlt_load_id = ?", load_id)]
        assert sorted(landed) == sorted(changed[object_type]), object_type
        assert report.rows(object_type) == len(changed[object_type])
    _assert_warehouse_equals_sandbox(sandbox.warehouse, fresh_firm)

    assert _data_rows(_run()) == {}


def test_api_writes_archives_and_new_properties_are_picked_up(sandbox, fresh_firm) -> None:
    _run()
    company, deal = (str(i) for (i,) in _state(
        fresh_firm, "SELECT min(id) FROM hs_objects WHERE object_type = ? AND archived = 0 UNION ALL "
                    "SELECT min(id) FROM hs_objects WHERE object_type = ? AND archived = 0", "companies", "deals"))
    _api(sandbox, "POST", "/crm/v3/properties/companies", {
        "name": "account_tier", "label": "Account tier", "type": "string", "fieldType": "text",
        "groupName": "companyinformation"})
    _api(sandbox, "PATCH", f"/crm/v3/objects/companies/{company}",
         {"properties": {"description": "Advises on everything", "account_tier": "gold"}})
    _api(sandbox, "DELETE", f"/crm/v3/objects/deals/{deal}")

    report = _run()
    assert _data_rows(report) == {"companies": 1, "deals": 1, "deals__associations": 2, "properties": 1}
    (landed,) = _rows(sandbox.warehouse, "SELECT description, account_tier FROM raw_hubspot.companies "
                                         "WHERE id = ?", company)
    assert landed == {"description": "Advises on everything", "account_tier": "gold"}
    (archived,) = _rows(sandbox.warehouse, "SELECT archived, archived_at FROM raw_hubspot.deals WHERE id = ?", deal)
    assert archived["archived"] is True and archived["archived_at"] is not None
    _assert_warehouse_equals_sandbox(sandbox.warehouse, fresh_firm)

    assert _data_rows(_run()) == {}


def test_many_records_sharing_one_timestamp_are_walked_by_id(sandbox, fresh_firm) -> None:
    _run()
    (newest,) = _state(fresh_firm, "SELECT max(updated_at) FROM hs_objects")[0]
    instant = newest + 1000
    con = sqlite3.connect(fresh_firm / "sandbox.sqlite")
    with con:
        con.execute("UPDATE hs_objects SET updated_at = ? WHERE object_type = 'deals' AND archived = 0", (instant,))
        con.execute("INSERT INTO hs_objects (object_type, id, properties, created_at, updated_at) "
                    "SELECT object_type, id + 1000000, properties, created_at, updated_at FROM hs_objects "
                    "WHERE object_type = 'deals' AND archived = 0")
    con.close()
    (crowd,) = _state(fresh_firm, "SELECT count(*) FROM hs_objects WHERE object_type = 'deals' AND updated_at = ?",
                      instant)[0]
    assert crowd > settings.SEARCH_LIMIT

    sandbox.reset_requests()
    report = _run()
    assert report.rows("deals") == crowd
    # From the cursor: one page moving to the instant, one finding it full, the instant by id, past it.
    pages_in_instant = math.ceil(crowd / settings.SEARCH_LIMIT)
    assert sandbox.requests_made("hubspot")["POST /crm/v3/objects/deals/search"] == 3 + pages_in_instant
    assert sandbox.requests_made("hubspot")["POST /crm/v4/associations/deals/companies/batch/read"] == 1
    _assert_warehouse_equals_sandbox(sandbox.warehouse, fresh_firm)


def _content(warehouse: Path) -> dict[str, list[tuple]]:
    """Every data table's rows without dlt's bookkeeping; child rows keyed by their parent's key."""
    keys = {"companies": "p.id", "contacts": "p.id", "deals": "p.id", "properties": "p.object_type || '.' || p.name"}
    out = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = 'raw_hubspot' AND table_name NOT LIKE '_dlt%'")
                  .fetchall()]
        for table in tables:
            parent, _, _ = table.partition("__")
            if parent == table:
                sql = f"SELECT * EXCLUDE (_dlt_load_id, _dlt_id) FROM raw_hubspot.{table} p"
            else:
                sql = (f"SELECT {keys[parent]} AS parent_key, c.* EXCLUDE (_dlt_root_id, _dlt_parent_id, _dlt_id) "
                       f"FROM raw_hubspot.{table} c JOIN raw_hubspot.{parent} p ON c._dlt_parent_id = p._dlt_id")
            out[table] = sorted(con.execute(sql).fetchall(), key=repr)
    return out


def test_rate_limits_and_server_faults_change_nothing(sandbox, firm, tmp_path, monkeypatch) -> None:
    # Small pages, so the small firm takes enough requests for faults to land on some.
    monkeypatch.setattr(settings, "LIST_LIMIT", 10)
    sandbox.reset_requests()
    _run()
    clean_requests = sum(sandbox.requests_made("hubspot").values())
    clean = _content(sandbox.warehouse)

    faulty_warehouse = tmp_path / "faulty" / "warehouse.duckdb"
    monkeypatch.setenv("CONCORD_WAREHOUSE", str(faulty_warehouse))
    sandbox.server.settings.rate_limits = True
    sandbox.server.settings.faults.error_rate = 0.1
    # Bursts of 429 with `Retry-After: 0`, as a portal over its ten-second limit sends them.
    sandbox.server.settings.faults.storm_rate = 0.03
    sandbox.server.settings.faults.storm_length = 3
    sandbox.server.settings.faults.retry_after = 0
    sandbox.reset_requests()
    _run()
    assert sum(sandbox.requests_made("hubspot").values()) > clean_requests, "no fault was injected"
    assert _content(faulty_warehouse) == clean


def test_a_wrong_token_fails_at_once_naming_the_setting(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("SOURCES__HUBSPOT__ACCESS_TOKEN", "pat-na1-not-the-token")
    sandbox.reset_requests()
    started = time.perf_counter()
    with pytest.raises(CredentialsRejected) as failure:
        _run()
    elapsed = time.perf_counter() - started
    message = str(failure.value)
    assert elapsed < 2.0
    assert "HubSpot" in message and "SOURCES__HUBSPOT__ACCESS_TOKEN" in message
    assert "pat-na1-not-the-token" not in message
    assert sum(sandbox.requests_made("hubspot").values()) == 1


def test_records_that_break_the_contract_are_quarantined_and_the_rest_loads(sandbox, fresh_firm) -> None:
    companies = [str(i) for (i,) in _state(fresh_firm, "SELECT id FROM hs_objects WHERE object_type = 'companies' "
                                                       "AND archived = 0 ORDER BY id LIMIT 2")]
    deals = [str(i) for (i,) in _state(fresh_firm, "SELECT id FROM hs_objects WHERE object_type = 'deals' "
                                                   "AND archived = 0 ORDER BY id LIMIT 2")]
    con = sqlite3.connect(fresh_firm / "sandbox.sqlite")
    with con:
        for object_type, object_id, name, value in (
                ("companies", companies[0], "numberofemployees", "many"),
                ("companies", companies[1], "numberofemployees", ""),  # blank: not a breach
                ("deals", deals[0], "closedate", "next tuesday"),
                ("deals", deals[1], "deal_currency_code", "XTS")):
            con.execute("UPDATE hs_objects SET properties = json_set(properties, ?, ?) WHERE object_type = ? "
                        "AND id = ?", (f'$."{name}"', value, object_type, int(object_id)))
    con.close()

    report = _run()
    assert report.quarantined == 3
    quarantine = {(r["source_table"], r["record_id"]): r for r in _rows(
        sandbox.warehouse, "SELECT source_table, record_id, reason, raw_record FROM raw_hubspot.quarantine")}
    assert set(quarantine) == {("companies", companies[0]), ("deals", deals[0]), ("deals", deals[1])}
    assert "numberofemployees" in quarantine[("companies", companies[0])]["reason"]
    assert orjson.loads(quarantine[("companies", companies[0])]["raw_record"])["properties"]["numberofemployees"] \
        == "many"
    assert "closedate" in quarantine[("deals", deals[0])]["reason"]
    assert "deal_currency_code" in quarantine[("deals", deals[1])]["reason"]

    totals = dict(_state(fresh_firm, "SELECT object_type, count(*) FROM hs_objects GROUP BY 1"))
    landed = {t: {r["id"] for r in _rows(sandbox.warehouse, f"SELECT id FROM raw_hubspot.{t}")} for t in TYPES}
    assert len(landed["companies"]) == totals["companies"] - 1 and companies[0] not in landed["companies"]
    assert companies[1] in landed["companies"]
    assert len(landed["deals"]) == totals["deals"] - 2

    _api(sandbox, "PATCH", f"/crm/v3/objects/companies/{companies[0]}", {"properties": {"numberofemployees": "250"}})
    repaired = _run()
    assert repaired.rows("companies") == 1 and repaired.quarantined == 0
    (row,) = _rows(sandbox.warehouse, "SELECT numberofemployees FROM raw_hubspot.companies WHERE id = ?",
                   companies[0])
    assert row["numberofemployees"] == "250"
