"""Detection scored against the sandbox's ground truth: every injected fault reported once, with
its client, owner and amounts, and nothing else (messy-but-valid records above all).

Small firms at three seeds and a medium firm at one run with the suite, with the default noise;
two more medium seeds are marked `slow` (`make test-slow`).
"""

from __future__ import annotations

import pytest

from tests.dbt.conftest import build_warehouse
from tests.dbt.scoring import ReportingRates, problems, score, table

COLUMNS = ("exception_type", "source_system", "source_record_id", "customer_id", "owner_system", "amount_at_risk",
           "currency", "amount_at_risk_reporting", "details")


def detections(warehouse) -> list[dict]:
    sql = f"select {', '.join(COLUMNS)} from reconciliation.reconciliation_exceptions"
    return [dict(zip(COLUMNS, row)) for row in warehouse.query(sql)]


def assert_perfect(warehouse, title: str) -> None:
    scores = score(warehouse.data_dir / "ground_truth.jsonl", detections(warehouse),
                   ReportingRates(warehouse.data_dir))
    print("\n" + table(scores, title))
    found = problems(scores)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_detection_is_exact_on_small_firms(tmp_path, seed: int) -> None:
    for warehouse in build_warehouse(tmp_path, scale="small", seed=seed, fault_rate=0.1):
        warehouse.build_models()  # the data tests run in the full builds elsewhere
        assert_perfect(warehouse, f"small firm, seed {seed}")


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow), pytest.param(3, marks=pytest.mark.slow)])
def test_detection_is_exact_on_medium_firms(tmp_path, seed: int) -> None:
    for warehouse in build_warehouse(tmp_path, scale="medium", seed=seed):
        warehouse.dbt("build")
        assert_perfect(warehouse, f"medium firm, seed {seed}")
