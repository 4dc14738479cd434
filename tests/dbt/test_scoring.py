"""The scoring itself: each way an exception row can be wrong is caught, so a perfect score means
something. Hand-made ground truth and rows; no warehouse."""

from __future__ import annotations

import hashlib

import pytest

from sandbox import ground_truth
from tests.dbt.scoring import problems, score

CUSTOMER = {"client_key": 3, "name": "Orbitgate Insurance", "hubspot_company_id": "20000000003",
            "erp_customer_ref": "C00004", "stripe_customer_id": "cus_A"}
FAULT = {"kind": "fault", "fault_id": "invoice_missing_in_erp:7", "exception_type": "invoice_missing_in_erp",
         "detectable_at": "2026-09-01T00:00:00Z", "customer": CUSTOMER, "systems": ["stripe"],
         "records": [{"system": "stripe", "object": "invoice", "id": "in_7"}], "amount_at_risk": 1200.0,
         "currency": "GBP", "details": {}}
VALID = {"kind": "valid", "valid_id": "tax:3", "noise": "tax", "customer": CUSTOMER, "systems": ["stripe"],
         "records": [{"system": "stripe", "object": "invoice", "id": "in_8"}],
         "why": "VAT at 20% on top of the pre-tax price", "details": {"treatment": "standard"}}


class FixedRates:
    def to_reporting(self, amount: float, currency: str) -> float:
        return round(amount / 0.8, 2)


def row(**overrides) -> dict:
    base = {"exception_type": "invoice_missing_in_erp", "source_system": "stripe", "source_record_id": "in_7",
            "customer_id": hashlib.md5(b"hubspot-20000000003").hexdigest(), "owner_system": "erp",
            "amount_at_risk": 1200.0, "currency": "GBP", "amount_at_risk_reporting": 1500.0, "details": "{}"}
    return {**base, **overrides}


@pytest.fixture
def truth(tmp_path):
    path = tmp_path / "ground_truth.jsonl"
    ground_truth.write(path, [FAULT, VALID])
    return path


def test_the_exact_row_scores_perfectly(truth) -> None:
    assert problems(score(truth, [row()], FixedRates())) == []


@pytest.mark.parametrize("rows, expected", [
    ([], "missed invoice_missing_in_erp:7"),
    ([row(), row()], "duplicate stripe in_7: 2 rows"),
    ([row(customer_id="someone-else")], "customer_id invoice_missing_in_erp:7"),
    ([row(owner_system="stripe")], "owner invoice_missing_in_erp:7: expected erp"),
    ([row(amount_at_risk=1200.01)], "amount invoice_missing_in_erp:7: expected 1200.0 GBP"),
    ([row(amount_at_risk_reporting=1499.99)], "expected 1500.0 USD"),
    ([row(currency="USD")], "reported 1200.0 USD"),
    ([row(), row(source_record_id="in_8")], "valid record reported stripe in_8 is tax:3"),
])
def test_every_kind_of_wrong_row_is_a_problem(truth, rows, expected) -> None:
    found = problems(score(truth, rows, FixedRates()))
    assert any(expected in p for p in found), found
