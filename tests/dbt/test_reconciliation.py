"""Exceptions over time: after the firm moves on (`sandbox advance`), an exception someone fixed
through the systems' APIs disappears (the fix is a fact the simulated firm keeps), new ones appear as their SLAs pass, and one that persists
keeps its `exception_id` and `first_detected_at`; detection stays exact against the ground truth.
"""

from __future__ import annotations

import json

import requests

from sandbox import ground_truth
from sandbox.lifecycle import advance
from tests.dbt.conftest import build_warehouse
from tests.dbt.scoring import exception_key, problems, score, table, truth_key

COLUMNS = ("exception_id", "exception_type", "source_system", "source_record_id", "amount_at_risk", "currency",
           "details", "detected_at", "first_detected_at")


def exceptions(warehouse) -> dict[str, dict]:
    rows = warehouse.query(f"select {', '.join(COLUMNS)} from reconciliation.reconciliation_exceptions")
    out = {}
    for row in rows:
        record = dict(zip(COLUMNS, row))
        record["details"] = json.loads(record["details"]) if isinstance(record["details"], str) else record["details"]
        out[record["exception_id"]] = record
    return out


def history(warehouse) -> dict[str, dict]:
    columns = ("exception_id", "first_detected_at", "last_detected_at", "resolved_at", "occurrences")
    rows = warehouse.query(f"select {', '.join(columns)} from reconciliation.reconciliation_exception_history")
    return {row[0]: dict(zip(columns, row)) for row in rows}


def first(rows: dict[str, dict], exception_type: str, **details: str) -> dict:
    """The exception of a type whose details match, with the smallest subject id (deterministic
    for a seed)."""
    found = sorted((r for r in rows.values() if r["exception_type"] == exception_type
                    and all(r["details"].get(k) == v for k, v in details.items())),
                   key=lambda r: r["source_record_id"])
    assert found, f"the firm has no {exception_type} {details} to fix"
    return found[0]


def test_exceptions_follow_the_firm_through_an_advance(tmp_path) -> None:
    for warehouse in build_warehouse(tmp_path, scale="small", seed=1, fault_rate=0.1):
        warehouse.dbt("build")
        first_as_of = warehouse.as_of
        before = exceptions(warehouse)
        assert before and {r["first_detected_at"] for r in before.values()} == {r["detected_at"] for r in before.values()}

        # Fix two problems the way their owners would, through the systems' APIs.
        settings = warehouse.env()
        vat = first(before, "customer_attribute_mismatch", attribute="vat")
        response = requests.patch(
            f"{settings['SOURCES__HUBSPOT__BASE_URL']}/crm/v3/objects/companies/{vat['source_record_id']}",
            json={"properties": {"vat_number": vat["details"]["owner_value"]}},
            headers={"Authorization": f"Bearer {settings['SOURCES__HUBSPOT__ACCESS_TOKEN']}"}, timeout=30)
        assert response.status_code == 200, response.text
        status = first(before, "invoice_status_mismatch", mismatch="paid_in_erp_open_in_stripe")
        response = requests.post(
            f"{settings['SOURCES__STRIPE__BASE_URL']}/v1/invoices/{status['source_record_id']}/pay",
            data={"paid_out_of_band": "true"},
            headers={"Authorization": f"Bearer {settings['SOURCES__STRIPE__API_KEY']}"}, timeout=30)
        assert response.status_code == 200, response.text
        fixed = {vat["exception_id"], status["exception_id"]}

        # Three weeks on: September's time is past its billing cycle, new invoices past their SLAs.
        advance(warehouse.data_dir, 21)
        warehouse.ingest()
        warehouse.build_models()
        second_as_of = warehouse.as_of
        after = exceptions(warehouse)

        assert not fixed & after.keys(), "a fixed exception is still reported"
        new = after.keys() - before.keys()
        assert new, "no new exception after three weeks"
        assert all(str(after[i]["first_detected_at"]) == second_as_of for i in new)
        persisting = before.keys() & after.keys()
        assert persisting, "no exception persisted"
        for exception_id in persisting:
            assert after[exception_id]["first_detected_at"] == before[exception_id]["first_detected_at"]
            assert str(after[exception_id]["first_detected_at"]) == first_as_of
            assert str(after[exception_id]["detected_at"]) == second_as_of

        lives = history(warehouse)
        for exception_id in fixed:
            assert str(lives[exception_id]["resolved_at"]) == second_as_of
        assert all(lives[i]["resolved_at"] is None for i in after)

        # Detection is still exact: both writes are facts of the sandbox's world, so its ground
        # truth no longer lists what they fixed.
        truth = warehouse.data_dir / "ground_truth.jsonl"
        assert not {exception_key(status), exception_key(vat)} & {
            truth_key(e) for e in ground_truth.faults(ground_truth.read(truth))}
        scores = score(truth, list(after.values()))
        print("\n" + table(scores, "small firm, seed 1, after 21 days"))
        assert not problems(scores), "\n".join(problems(scores))


def test_a_rebuild_at_the_same_moment_changes_nothing(tmp_path) -> None:
    for warehouse in build_warehouse(tmp_path, scale="small", seed=2, fault_rate=0.1):
        warehouse.build_models()
        before = exceptions(warehouse)
        warehouse.build_models("--full-refresh")
        after = exceptions(warehouse)
        assert before == after
        assert all(r["occurrences"] == 1 and r["resolved_at"] is None for r in history(warehouse).values())
