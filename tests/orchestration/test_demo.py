"""The demo's and the UI's plumbing: a line per finished step, the data dir, the UI's sandbox.

The demo itself (`make demo`) is the end-to-end run; these check the parts it is made of.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click
import pytest
import requests

from orchestration import demo, ui
from orchestration.runner import materialize, step_durations
from reverse_etl import push
from tests.ingestion.conftest import firm, sandbox  # noqa: F401 - fixtures
from tests.reverse_etl.conftest import Firm
from tests.reverse_etl.conftest import firm as built_copy  # noqa: F401 - fixture


def test_a_line_per_finished_step_and_its_duration(sandbox, capsys) -> None:  # noqa: F811
    result = materialize("key:raw/erp/account_move", log_level="ERROR")
    assert result.success
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  raw_erp ")]
    assert len(lines) == 1 and lines[0].startswith("  raw_erp done (") and lines[0].endswith(" s)")
    durations = step_durations(result)  # the load, and the checks that come with the asset
    assert durations["raw_erp"] > 0 and set(durations) == {e.step_key for e in result.all_events if e.step_key}


def test_progress_can_be_switched_off(sandbox, capsys) -> None:  # noqa: F811
    assert materialize("key:raw/erp/res_company", log_level="ERROR", progress=False).success
    assert "done (" not in capsys.readouterr().out


def test_the_demo_empties_only_a_data_dir_it_made(tmp_path: Path) -> None:
    mine = tmp_path / "demo"
    demo.fresh_data_dir(mine)
    (mine / "warehouse.duckdb").write_text("old")
    demo.fresh_data_dir(mine)
    assert sorted(p.name for p in mine.iterdir()) == [demo.MARKER]

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    with pytest.raises(click.ClickException, match="did not make"):
        demo.fresh_data_dir(theirs)
    assert (theirs / "notes.txt").read_text() == "keep me"


def test_the_demo_instance_gets_the_repo_instance_config(tmp_path: Path) -> None:
    home = demo.dagster_home(tmp_path)
    assert home == (tmp_path / "dagster_home").resolve()
    if demo.DAGSTER_YAML.exists():
        assert (home / "dagster.yaml").read_text() == demo.DAGSTER_YAML.read_text()


def test_ui_generates_serves_and_stops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`concord ui` with `dagster dev` replaced by a script that records what it was given."""
    seen = tmp_path / "seen.json"
    script = ("import json, os, sys, urllib.request; "
              "base = os.environ['SOURCES__HUBSPOT__BASE_URL'].rsplit('/', 1)[0]; "
              "health = json.load(urllib.request.urlopen(base + '/_sandbox/health')); "
              "record = {'env': dict(os.environ), 'argv': sys.argv[1:], 'health': health}; "
              f"json.dump(record, open({str(seen)!r}, 'w'))")
    monkeypatch.setattr(ui, "dagster_dev_command", lambda host, port: [sys.executable, "-c", script, host, str(port)])
    data = tmp_path / "firm"
    ui.run(str(data), "127.0.0.1", 3999)

    recorded = json.loads(seen.read_text())
    env = recorded["env"]
    assert recorded["argv"] == ["127.0.0.1", "3999"] and "now_ms" in recorded["health"]
    assert (data / "sandbox.sqlite").exists() and (data / demo.MARKER).exists()
    assert env["CONCORD_WAREHOUSE"] == str((data / "warehouse.duckdb").resolve())
    assert env["DAGSTER_HOME"] == str((data / "dagster_home").resolve()) and env["CONCORD_AS_OF"]
    base = env["SOURCES__HUBSPOT__BASE_URL"].rsplit("/", 1)[0]
    with pytest.raises(requests.ConnectionError):  # the sandbox stopped with the UI
        requests.get(f"{base}/_sandbox/health", timeout=2)


def test_the_summary_counts_the_stale_companies_a_push_has_since_sent(built_copy: Firm) -> None:  # noqa: F811
    """`crm_financial_status_stale` is measured before a run's push; the summary says which the push fixed."""
    warehouse = built_copy.w.path
    (stale,) = built_copy.query("SELECT count(*) FROM reconciliation.reconciliation_exceptions "
                                "WHERE exception_type = 'crm_financial_status_stale'")[0]
    assert stale > 0, "a firm nothing has pushed to has stale companies"
    before = dt.datetime.now(dt.timezone.utc)
    assert push("companies", settings=built_copy.settings()).ok
    assert demo.stale_sent_since(warehouse, before) == stale
    assert demo.stale_sent_since(warehouse, dt.datetime.now(dt.timezone.utc)) == 0


def test_the_summary_counts_valid_records_reported_as_faults(tmp_path: Path) -> None:
    from sandbox import ground_truth

    truth = tmp_path / "ground_truth.jsonl"
    record = {"system": "stripe", "object": "invoice"}
    ground_truth.write(truth, [
        {"kind": "fault", "records": [{**record, "id": "in_faulty"}]},
        {"kind": "valid", "records": [{**record, "id": "in_taxed"}, {**record, "id": "in_faulty"},
                                      {**record, "id": "in_quiet"}]},
    ])
    warehouse = tmp_path / "warehouse.duckdb"
    import duckdb

    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA reconciliation")
        con.execute("CREATE TABLE reconciliation.reconciliation_exceptions AS SELECT * FROM (VALUES "
                    "('invoice_missing_in_erp', 'stripe', 'in_faulty'), ('invoice_amount_mismatch', 'stripe', 'in_taxed'), "
                    "('crm_financial_status_stale', 'stripe', 'in_quiet')) AS t(exception_type, source_system, source_record_id)")
    assert demo.valid_records_reported(warehouse, truth) == 1
