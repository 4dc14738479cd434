"""A firm a few weeks old has no disputes, credit notes or reconciled payments yet; dlt creates no
table for them until their first row arrives. The project must build all the same."""

from __future__ import annotations

from tests.dbt.conftest import build_warehouse


def test_a_young_firm_builds(tmp_path) -> None:
    for warehouse in build_warehouse(tmp_path, scale="small", seed=5, as_of="2025-11-20"):
        missing = {"disputes", "credit_notes"} - {t for (t,) in warehouse.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw_stripe'")}
        assert missing, "this firm should be too young for disputes or credit notes"
        warehouse.dbt("build")
        assert warehouse.query("SELECT count(*) FROM staging.stg_stripe__disputes") == [(0,)]
