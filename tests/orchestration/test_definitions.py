"""The Dagster definitions load, name every asset as agreed, and materialise in-process."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from orchestration.cli import main
from orchestration.definitions import defs
from ingestion.warehouse import CRASH_ENV
from orchestration.runner import materialize
from tests.ingestion.conftest import firm, fresh_firm, sandbox  # noqa: F401 - fixtures

RAW_ASSETS = [
    "raw/erp/account_journal", "raw/erp/account_move", "raw/erp/account_move__account_payment",
    "raw/erp/account_payment", "raw/erp/res_company", "raw/erp/res_country", "raw/erp/res_currency",
    "raw/erp/res_currency_rate", "raw/erp/res_partner", "raw/erp/sale_order", "raw/erp/sale_order_line",
    "raw/harvest/clients", "raw/harvest/expenses", "raw/harvest/projects", "raw/harvest/tasks",
    "raw/harvest/time_entries", "raw/harvest/time_entry_presence", "raw/harvest/users",
    "raw/hubspot/companies", "raw/hubspot/contacts", "raw/hubspot/deals", "raw/hubspot/properties",
    "raw/stripe/charges", "raw/stripe/credit_notes", "raw/stripe/customers", "raw/stripe/disputes",
    "raw/stripe/invoices",
]


def asset_keys() -> list[str]:
    return sorted(key.to_user_string() for assets in defs.assets for key in assets.keys)


def test_every_asset_key_as_agreed() -> None:
    assert [k for k in asset_keys() if k.startswith("raw/")] == RAW_ASSETS
    groups = {key.to_user_string(): group for assets in defs.assets
              for key, group in assets.group_names_by_key.items()}
    assert {k: groups[k] for k in RAW_ASSETS} == {k: k.split("/")[1] for k in RAW_ASSETS}
    assert defs.resolve_job_def("ingest") is not None


def test_materialising_raw_assets_in_process(sandbox) -> None:  # noqa: F811
    result = materialize("group:harvest or group:erp", log_level="WARNING")
    assert result.success
    events = {e.asset_key.to_user_string(): e.materialization.metadata
              for e in result.get_asset_materialization_events()}
    assert set(events) == {k for k in RAW_ASSETS if k.split("/")[1] in {"harvest", "erp"}}
    assert events["raw/harvest/time_entries"]["rows_loaded"].value > 10_000
    assert events["raw/harvest/time_entries"]["quarantined"].value == 0
    landed, = sandbox.query("SELECT count(*) FROM raw_harvest.time_entries")[0]
    assert landed == events["raw/harvest/time_entries"]["rows_loaded"].value


def test_concord_run_selects_and_reports(sandbox) -> None:  # noqa: F811
    result = CliRunner().invoke(main, ["run", "--select", "key:raw/erp/account_move", "--log-level", "ERROR"])
    assert result.exit_code == 0, result.output
    assert "raw/erp/account_move" in result.output and "1 assets materialised" in result.output
    assert sandbox.query("SELECT count(*) FROM raw_erp.account_move")[0][0] > 0


def test_an_interrupted_load_is_finished_by_the_next_materialisation(sandbox) -> None:  # noqa: F811
    """dagster-dlt's own resource would drop the pending package; ours finishes it first."""
    env = {**os.environ, CRASH_ENV: "normalize"}
    crashed = subprocess.run([sys.executable, "-m", "ingestion", "erp"], env=env, capture_output=True, text=True)
    assert crashed.returncode == -9, crashed.stderr[-2000:]
    result = materialize("group:erp", log_level="WARNING")
    assert result.success
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata
                for e in result.get_asset_materialization_events()}
    assert metadata["raw/erp/account_move"]["resumed_interrupted_load"].value is True
    ids = sandbox.query("SELECT id FROM raw_erp.account_move")
    assert len(ids) == len(set(ids)) > 0
