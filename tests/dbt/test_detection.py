"""Detection scored against the sandbox's ground truth: every injected fault reported, nothing else.

Small firms at three seeds run with the suite; medium firms at three seeds are marked `slow`
(`make test-slow`, and `make bench` reports them).
"""

from __future__ import annotations

import pytest

from tests.dbt.conftest import build_warehouse
from tests.dbt.scoring import problems, score, table

EXCEPTIONS_SQL = """
select exception_type, source_system, source_record_id, amount_at_risk, currency, details
from reconciliation.reconciliation_exceptions
"""


def detections(warehouse) -> list[dict]:
    columns = ("exception_type", "source_system", "source_record_id", "amount_at_risk", "currency", "details")
    return [dict(zip(columns, row)) for row in warehouse.query(EXCEPTIONS_SQL)]


def assert_perfect(warehouse, title: str) -> None:
    scores = score(warehouse.data_dir / "ground_truth.jsonl", detections(warehouse))
    print("\n" + table(scores, title))
    found = problems(scores)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_detection_is_exact_on_small_firms(tmp_path, seed: int) -> None:
    for warehouse in build_warehouse(tmp_path, scale="small", seed=seed, fault_rate=0.1):
        warehouse.build_models()  # the data tests run in the full builds elsewhere
        assert_perfect(warehouse, f"small firm, seed {seed}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_detection_is_exact_on_medium_firms(tmp_path, seed: int) -> None:
    for warehouse in build_warehouse(tmp_path, scale="medium", seed=seed):
        warehouse.dbt("build")
        assert_perfect(warehouse, f"medium firm, seed {seed}")
