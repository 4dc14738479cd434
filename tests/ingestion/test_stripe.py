"""The Stripe source against the sandbox: real HTTP, real DuckDB, the sandbox's own state as
the truth every landed record is compared with."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import requests

from ingestion import stripe
from ingestion.stripe.settings import TABLES
from ingestion.warehouse import SYNCS_TABLE, last_synced, pipelines_dir, run_source
from sandbox.lifecycle import advance
from sandbox.server.core import FaultSettings

KINDS = {"customers": "customer", "invoices": "invoice", "charges": "charge", "credit_notes": "credit_note",
         "disputes": "dispute"}
TABLE = {table.name: table for table in TABLES}
ENV = ("SOURCES__STRIPE__BASE_URL", "SOURCES__STRIPE__API_KEY")


# --- the sandbox's state and the warehouse's ---------------------------------------------------

def sandbox_docs(data_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{table: {id: document}} as the sandbox holds them now."""
    con = sqlite3.connect(data_dir / "sandbox.sqlite")
    try:
        out: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in KINDS}
        by_kind = {kind: name for name, kind in KINDS.items()}
        for kind, object_id, doc in con.execute("SELECT object, id, doc FROM stripe_objects"):
            if kind in by_kind:
                out[by_kind[kind]][object_id] = orjson.loads(doc)
        return out
    finally:
        con.close()


def sandbox_lines(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """{parent id: every line, in order} for invoices and credit notes."""
    con = sqlite3.connect(data_dir / "sandbox.sqlite")
    try:
        out: dict[str, list[dict[str, Any]]] = {}
        for parent, doc in con.execute("SELECT invoice, doc FROM stripe_invoice_lines ORDER BY invoice, seq"):
            out.setdefault(parent, []).append(orjson.loads(doc))
        return out
    finally:
        con.close()


def rows(warehouse: Path, sql: str) -> list[dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def landed(warehouse: Path, table: str) -> dict[str, dict[str, Any]]:
    found = rows(warehouse, f"SELECT * FROM raw_stripe.{table}")
    by_id = {row["id"]: row for row in found}
    assert len(by_id) == len(found), f"duplicate ids in {table}"
    return by_id


def landed_lines(warehouse: Path, table: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows(warehouse, f"SELECT p.id AS parent_id, l.* FROM raw_stripe.{table}__lines l "
                               f"JOIN raw_stripe.{table} p ON l._dlt_parent_id = p._dlt_id "
                               "ORDER BY p.id, l._dlt_list_idx"):
        out.setdefault(row.pop("parent_id"), []).append(row)
    return out


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _same(landed_value: Any, value: Any) -> bool:
    return landed_value == value or (landed_value is None and value in ({}, []))


def assert_same_fields(doc: dict[str, Any], row: dict[str, Any], json_columns: tuple[str, ...], where: str) -> None:
    """Every field of the sandbox's document equals the landed row: scalars as columns,
    top-level objects as `parent__child` columns (deeper ones as JSON), JSON columns as JSON."""
    for key, value in doc.items():
        if key == "lines":
            continue
        if key in json_columns or isinstance(value, list):
            assert _same(_json(row.get(key)), value), f"{where}.{key}"
        elif isinstance(value, dict):
            for sub, item in value.items():
                got = row.get(f"{key}__{sub}")
                got = _json(got) if isinstance(item, (dict, list)) else got
                assert _same(got, item), f"{where}.{key}__{sub}: landed {got!r}, sandbox {item!r}"
        else:
            assert row.get(key) == value, f"{where}.{key}: landed {row.get(key)!r}, sandbox {value!r}"


def assert_mirrors_sandbox(warehouse: Path, data_dir: Path) -> None:
    """The warehouse holds exactly the sandbox's objects, each as the sandbox holds it now,
    with every line of every invoice and credit note."""
    docs = sandbox_docs(data_dir)
    lines = sandbox_lines(data_dir)
    for name, expected in docs.items():
        got = landed(warehouse, name) if expected else {}
        assert set(got) == set(expected), f"{name}: ids differ from the sandbox's"
        for object_id, doc in expected.items():
            assert_same_fields(doc, got[object_id], TABLE[name].json_columns, f"{name}[{object_id}]")
        if TABLE[name].has_lines and expected:
            got_lines = landed_lines(warehouse, name)
            for parent in expected:
                want = lines.get(parent, [])
                have = got_lines.get(parent, [])
                assert [line["id"] for line in have] == [line["id"] for line in want], f"lines of {parent}"
                for line, row in zip(want, have):
                    assert_same_fields(line, row, ("period", "price", "metadata"), f"{parent}.lines[{line['id']}]")
            assert set(got_lines) <= set(expected)


def expected_first_run_requests(data_dir: Path) -> dict[str, int]:
    """One request for the high-water mark, then one per page of 100 per list."""
    docs = sandbox_docs(data_dir)
    counts = {"GET /v1/events": 1}
    for name, found in docs.items():
        counts[f"GET /v1/{name}"] = max(1, math.ceil(len(found) / 100))
    return counts


def retrieved_ids(requests_made: dict[str, int]) -> dict[str, set[str]]:
    """{table: ids retrieved one by one} from the sandbox's request counts."""
    out: dict[str, set[str]] = {name: set() for name in KINDS}
    for route, count in requests_made.items():
        method, _, path = route.partition(" ")
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 3 and parts[1] in out:
            assert count == 1, f"{route} fetched {count} times"
            out[parts[1]].add(parts[2])
    return out


def load(warehouse: Path | None = None, source=None):
    return run_source(source if source is not None else stripe.source(), "stripe", warehouse)


def stripe_post(sandbox, path: str, data: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{sandbox.settings['SOURCES__STRIPE__BASE_URL']}{path}", data=data, timeout=10,
                             headers={"Authorization": f"Bearer {sandbox.settings['SOURCES__STRIPE__API_KEY']}"})
    assert response.status_code == 200, response.text
    return response.json()


# --- configuration -----------------------------------------------------------------------------

def test_source_is_created_without_settings_and_names_the_missing_one(tmp_path, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .dlt/secrets.toml to find either
    monkeypatch.setenv("CONCORD_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))

    source = stripe.source()
    assert list(source.resources) == ["customers", "invoices", "charges", "credit_notes", "disputes"]
    for resource in source.resources.values():
        assert resource.write_disposition == "merge"
        assert resource.compute_table_schema()["columns"]["id"]["primary_key"]

    with pytest.raises(Exception) as failure:
        load(source=source)
    assert "SOURCES__STRIPE__API_KEY" in str(failure.value)
    assert "SOURCES__STRIPE__BASE_URL" in str(failure.value)


# --- loads -------------------------------------------------------------------------------------

def test_first_run_lands_exactly_the_sandbox(sandbox, firm):
    sandbox.reset_requests()
    started = time.perf_counter()
    report = load()
    seconds = time.perf_counter() - started

    assert_mirrors_sandbox(sandbox.warehouse, firm)
    assert sandbox.requests_made("stripe") == expected_first_run_requests(firm)
    assert report.quarantined == 0
    landed_rows = sum(report.row_counts.values())
    print(f"\nstripe first run: {landed_rows} rows in {seconds:.2f} s = {landed_rows / seconds:,.0f} rows/s")

    key = sandbox.settings["SOURCES__STRIPE__API_KEY"]
    files = [sandbox.warehouse, *pipelines_dir(sandbox.warehouse).rglob("*")]
    assert not [path for path in files if path.is_file() and key.encode() in path.read_bytes()], \
        "the API key was landed"


def test_second_run_without_changes_lands_nothing_with_one_request(sandbox, firm, caplog):
    with caplog.at_level(logging.DEBUG):
        load()
    assert caplog.records and sandbox.settings["SOURCES__STRIPE__API_KEY"] not in caplog.text, "the key was logged"
    before = {name: landed(sandbox.warehouse, name) for name in KINDS}
    sandbox.reset_requests()

    report = load()

    assert report.row_counts == {}
    assert sandbox.requests_made("stripe") == {"GET /v1/events": 1}
    assert {name: landed(sandbox.warehouse, name) for name in KINDS} == before
    # dlt records no load for a run with nothing new; the sync is recorded all the same
    with duckdb.connect(str(sandbox.warehouse), read_only=True) as con:
        (last_load,) = con.execute("SELECT max(inserted_at) FROM raw_stripe._dlt_loads").fetchone()
        syncs = con.execute(f"SELECT rows_landed, load_ids FROM {SYNCS_TABLE} WHERE system = 'stripe' "
                            "ORDER BY synced_at").fetchall()
        assert last_synced(con, "stripe") > last_load
    assert len(syncs) == 2 and syncs[0][0] > 0 and syncs[1] == (0, [])


def test_after_three_days_exactly_the_changed_objects_are_fetched_and_merged(sandbox, fresh_firm):
    source = stripe.source()  # one source object for both loads, as Dagster keeps it
    load(source=source)
    before = sandbox_docs(fresh_firm)
    advance(fresh_firm, 3)
    after = sandbox_docs(fresh_firm)
    changed = {name: {i for i, doc in docs.items() if before[name].get(i) != doc} for name, docs in after.items()}
    sandbox.reset_requests()

    load(source=source)

    made = sandbox.requests_made("stripe")
    assert retrieved_ids(made) == changed
    assert not [route for route in made if route.endswith("/lines")]  # no invoice has more than 10 lines
    assert made["GET /v1/events"] == 1
    assert_mirrors_sandbox(sandbox.warehouse, fresh_firm)

    became_paid = {i for i in changed["invoices"]
                   if after["invoices"][i]["status"] == "paid" and i in before["invoices"]
                   and before["invoices"][i]["status"] != "paid"}
    assert became_paid
    statuses = landed(sandbox.warehouse, "invoices")
    assert {statuses[i]["status"] for i in became_paid} == {"paid"}
    assert all(statuses[i]["status_transitions__paid_at"] for i in became_paid)
    for name in ("invoices", "charges"):  # disputes are too rare to expect in any three days
        assert set(after[name]) - set(before[name]), f"the advance created no {name}"


def test_objects_created_through_the_api_arrive_on_the_next_run(sandbox, fresh_firm):
    source = stripe.source()
    load(source=source)
    docs = sandbox_docs(fresh_firm)
    open_invoices = sorted(i for i, doc in docs["invoices"].items() if doc["status"] == "open")

    customer = stripe_post(sandbox, "/v1/customers", {"name": "Halvorsen Partners", "email": "ap@halvorsen.example",
                                                      "metadata[erp_customer_ref]": "C-9001"})
    for n in range(12):  # more lines than an invoice embeds
        stripe_post(sandbox, "/v1/invoiceitems", {"customer": customer["id"], "currency": "eur",
                                                  "amount": str(10_000 + n), "description": f"Workshop day {n + 1}"})
    invoice = stripe_post(sandbox, "/v1/invoices", {"customer": customer["id"], "currency": "eur",
                                                    "collection_method": "send_invoice", "days_until_due": "30",
                                                    "pending_invoice_items_behavior": "include"})
    stripe_post(sandbox, f"/v1/invoices/{invoice['id']}/finalize", {})
    paid = stripe_post(sandbox, f"/v1/invoices/{invoice['id']}/pay", {})
    note = stripe_post(sandbox, "/v1/credit_notes", {"invoice": open_invoices[0], "amount": "500",
                                                     "reason": "order_change"})
    stripe_post(sandbox, f"/v1/invoices/{open_invoices[1]}/void", {})
    after = sandbox_docs(fresh_firm)
    sandbox.reset_requests()

    load(source=source)

    assert_mirrors_sandbox(sandbox.warehouse, fresh_firm)
    made = sandbox.requests_made("stripe")
    assert retrieved_ids(made) == {name: {i for i, doc in found.items() if docs[name].get(i) != doc}
                                   for name, found in after.items()}
    assert made[f"GET /v1/invoices/{invoice['id']}/lines"] == 1
    assert landed(sandbox.warehouse, "customers")[customer["id"]]["name"] == "Halvorsen Partners"
    assert landed(sandbox.warehouse, "invoices")[invoice["id"]]["status"] == "paid"
    assert len(landed_lines(sandbox.warehouse, "invoices")[invoice["id"]]) == 12
    assert paid["charge"] in landed(sandbox.warehouse, "charges")
    assert note["id"] in landed(sandbox.warehouse, "credit_notes")
    assert landed(sandbox.warehouse, "invoices")[open_invoices[1]]["status"] == "void"


def test_a_customer_deleted_after_a_load_stays_as_it_was_marked_deleted(sandbox, fresh_firm):
    """Stripe retrieves a deleted customer as a bare tombstone; its invoices still name it, so it
    lands as its deletion event shows it, marked deleted."""
    source = stripe.source()
    load(source=source)
    docs = sandbox_docs(fresh_firm)
    customer_id = sorted(docs["customers"])[0]
    response = requests.delete(f"{sandbox.settings['SOURCES__STRIPE__BASE_URL']}/v1/customers/{customer_id}",
                               headers={"Authorization": f"Bearer {sandbox.settings['SOURCES__STRIPE__API_KEY']}"},
                               timeout=10)
    assert response.json() == {"id": customer_id, "object": "customer", "deleted": True}

    load(source=source)

    row = landed(sandbox.warehouse, "customers")[customer_id]
    assert row["deleted"] is True
    assert (row["name"], row["email"]) == (docs["customers"][customer_id]["name"], docs["customers"][customer_id]["email"])


def table_content(warehouse: Path) -> dict[str, list[tuple]]:
    """Every landed table without dlt's per-load columns, in a stable order."""
    out = {}
    for name in KINDS:
        data = rows(warehouse, f"SELECT * FROM raw_stripe.{name}")
        out[name] = sorted(tuple(sorted((k, str(v)) for k, v in row.items() if not k.startswith("_dlt")))
                           for row in data)
    for name in ("invoices", "credit_notes"):
        data = rows(warehouse, f"SELECT p.id AS parent, l.* FROM raw_stripe.{name}__lines l "
                               f"JOIN raw_stripe.{name} p ON l._dlt_parent_id = p._dlt_id")
        out[f"{name}__lines"] = sorted(
            tuple(sorted((k, str(v)) for k, v in row.items() if not k.startswith("_dlt") or k == "_dlt_list_idx"))
            for row in data)
    return out


def spend_the_rate_limit(sandbox) -> None:
    """Use up the key's requests for the current second (Stripe test mode allows 25)."""
    headers = {"Authorization": f"Bearer {sandbox.settings['SOURCES__STRIPE__API_KEY']}"}
    with requests.Session() as session:
        for _ in range(30):
            session.get(f"{sandbox.settings['SOURCES__STRIPE__BASE_URL']}/v1/events", params={"limit": 1},
                        headers=headers, timeout=10)


def test_rate_limits_and_server_faults_change_nothing(sandbox, fresh_firm, tmp_path, caplog):
    clean, faulty = sandbox.warehouse, tmp_path / "faulty" / "warehouse.duckdb"
    settings = sandbox.server.settings

    def faulty_load() -> int:
        settings.rate_limits = True
        spend_the_rate_limit(sandbox)  # another client of the same key, so that the load starts limited
        sandbox.reset_requests()
        settings.faults = FaultSettings(error_rate=0.1, seed=3)
        try:
            load(faulty)
        finally:
            settings.rate_limits = False
            settings.faults = FaultSettings()
        return sum(sandbox.requests_made("stripe").values())

    def clean_load() -> int:
        sandbox.reset_requests()
        load(clean)
        return sum(sandbox.requests_made("stripe").values())

    with caplog.at_level(logging.INFO, logger="concord.ingestion"):
        clean_requests = clean_load()
        faulty_requests = faulty_load()
        advance(fresh_firm, 3)
        clean_requests += clean_load()
        faulty_requests += faulty_load()

    waits = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
    print(f"\nrequests: clean {clean_requests}, with rate limits and faults {faulty_requests}; "
          f"{sum('server error' in w for w in waits)} 5xx and {sum('429' in w for w in waits)} 429 waited out")
    assert any("server error" in w for w in waits) and any("429" in w for w in waits)
    assert faulty_requests == clean_requests + len(waits)  # every fault retried, nothing else repeated
    assert table_content(faulty) == table_content(clean)
    assert_mirrors_sandbox(faulty, fresh_firm)


def test_a_wrong_key_fails_fast_naming_the_setting(sandbox, firm, monkeypatch):
    monkeypatch.setenv("SOURCES__STRIPE__API_KEY", "sk_test_not_the_right_key_000000")
    sandbox.reset_requests()
    started = time.perf_counter()
    with pytest.raises(Exception) as failure:
        load()
    elapsed = time.perf_counter() - started

    assert elapsed < 2.0
    message = str(failure.value)
    assert "stripe" in message.lower() and "SOURCES__STRIPE__API_KEY" in message
    assert "sk_test_not_the_right_key_000000" not in message
    assert sandbox.requests_made("stripe") == {"GET /v1/events": 1}


def test_a_record_breaking_the_contract_is_quarantined_and_its_page_still_loads(sandbox, fresh_firm):
    con = sqlite3.connect(fresh_firm / "sandbox.sqlite")
    with con:
        newest = [i for (i,) in con.execute("SELECT id FROM stripe_objects WHERE object = 'invoice' "
                                            "ORDER BY created DESC, seq DESC LIMIT 3")]
        con.execute("UPDATE stripe_objects SET doc = json_set(doc, '$.currency', 'xyz') WHERE id = ?", (newest[0],))
        con.execute("UPDATE stripe_objects SET doc = json_set(doc, '$.amount_due', 'lots') WHERE id = ?",
                    (newest[2],))
        charge, = con.execute("SELECT id FROM stripe_objects WHERE object = 'charge' "
                              "ORDER BY created DESC, seq DESC LIMIT 1 OFFSET 5").fetchone()
        con.execute("UPDATE stripe_objects SET doc = json_remove(doc, '$.id') WHERE id = ?", (charge,))
    con.close()

    report = load()

    assert report.quarantined == 3 and report.quarantined_by_table == {"invoices": 2, "charges": 1}
    found = {row["record_id"]: row for row in rows(sandbox.warehouse, "SELECT * FROM raw_stripe.quarantine")}
    assert set(found) == {newest[0], newest[2], None}
    assert found[newest[0]]["source_table"] == "invoices"
    assert "currency" in found[newest[0]]["reason"] and json.loads(found[newest[0]]["raw_record"])["currency"] == "xyz"
    assert "amount_due" in found[newest[2]]["reason"]
    assert json.loads(found[newest[2]]["raw_record"])["amount_due"] == "lots"
    assert found[None]["reason"] == "missing id" and found[None]["source_table"] == "charges"
    assert all(row["_dlt_load_id"] for row in found.values())

    docs = sandbox_docs(fresh_firm)
    invoices = landed(sandbox.warehouse, "invoices")
    assert set(invoices) == set(docs["invoices"]) - {newest[0], newest[2]}
    assert newest[1] in invoices  # the neighbour on the same page
    assert set(landed(sandbox.warehouse, "charges")) == set(docs["charges"]) - {charge}


def test_a_cursor_past_event_retention_backfills(sandbox, fresh_firm, caplog):
    load()
    advance(fresh_firm, 40)
    sandbox.reset_requests()

    with caplog.at_level(logging.WARNING, logger="concord.ingestion"):
        load()

    assert_mirrors_sandbox(sandbox.warehouse, fresh_firm)
    assert any("retention" in record.getMessage() and "backfilling" in record.getMessage()
               for record in caplog.records)
    made = sandbox.requests_made("stripe")
    assert {route: n for route, n in made.items() if route != "GET /v1/events"} == {
        route: n for route, n in expected_first_run_requests(fresh_firm).items() if route != "GET /v1/events"}
    assert made["GET /v1/events"] == 2  # the expired cursor, then the new high-water mark


@pytest.mark.parametrize("step", ["extract", "normalize"])
def test_a_load_killed_mid_run_resumes_with_its_cursor(sandbox, fresh_firm, step):
    load()
    advance(fresh_firm, 3)
    script = ("from ingestion import stripe; from ingestion.warehouse import run_source; "
              "run_source(stripe.source(), 'stripe')")
    killed = subprocess.run([sys.executable, "-c", script], env={**os.environ, "CONCORD_CRASH_AFTER": step},
                            capture_output=True, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    advance(fresh_firm, 2)
    sandbox.reset_requests()

    report = load()

    assert report.resumed
    assert_mirrors_sandbox(sandbox.warehouse, fresh_firm)
    made = sandbox.requests_made("stripe")
    assert made["GET /v1/events"] == 1  # from the killed run's cursor: its package was loaded first
    assert not [route for route in made if route.count("/") == 2 and route != "GET /v1/events"]  # no lists
