"""`concord sandbox ...` as an operator runs it: generate, serve as its own process, advance."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from orchestration.cli import main
from orchestration.demo import start_server
from sandbox import store

SETTINGS = ["SOURCES__HUBSPOT__BASE_URL", "SOURCES__HUBSPOT__ACCESS_TOKEN", "SOURCES__STRIPE__BASE_URL",
            "SOURCES__STRIPE__API_KEY", "SOURCES__HARVEST__BASE_URL", "SOURCES__HARVEST__ACCESS_TOKEN",
            "SOURCES__HARVEST__ACCOUNT_ID", "SOURCES__ERP__CREDENTIALS"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("cli") / "firm"
    result = CliRunner().invoke(main, ["sandbox", "generate", "--data-dir", str(target), "--scale", "small",
                                       "--seed", "3", "--as-of", "2026-08-01", "--fault-rate-for",
                                       "duplicate_customer=0.2"])
    assert result.exit_code == 0, result.output
    assert "ground truth:" in result.output
    return target


def stripe(settings: dict[str, str], method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, f"{settings['SOURCES__STRIPE__BASE_URL']}{path}", timeout=10,
                            headers={"Authorization": f"Bearer {settings['SOURCES__STRIPE__API_KEY']}",
                                     **kwargs.pop("headers", {})}, **kwargs)


def test_serve_prints_connector_settings_and_persists_writes_across_restarts(data_dir: Path) -> None:
    process, settings = start_server(data_dir)
    try:
        assert list(settings) == SETTINGS
        assert settings["SOURCES__ERP__CREDENTIALS"].startswith("sqlite:///")
        created = stripe(settings, "POST", "/v1/customers", data={"name": "Walk-in client", "metadata[src]": "cli"},
                         headers={"Idempotency-Key": "restart-test"})
        assert created.status_code == 200, created.text
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
    process, settings = start_server(data_dir)
    try:
        again = stripe(settings, "GET", f"/v1/customers/{created.json()['id']}")
        assert again.status_code == 200 and again.json()["metadata"] == {"src": "cli"}
        events = stripe(settings, "GET", "/v1/events", params={"type": "customer.created", "limit": 1}).json()
        assert events["data"][0]["data"]["object"]["id"] == created.json()["id"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_fault_mode_and_live_settings(data_dir: Path) -> None:
    process, settings = start_server(data_dir, "--faults", "error=1.0")
    try:
        failed = stripe(settings, "GET", "/v1/invoices")
        assert failed.status_code in {500, 502, 503}
        assert failed.json()["error"]["type"] == "api_error"
        admin = settings["SOURCES__STRIPE__BASE_URL"].rsplit("/", 1)[0] + "/_sandbox/settings"
        changed = requests.put(admin, json={"faults": {"error_rate": 0.0}, "rate_limits": True}, timeout=10)
        assert changed.json()["faults"]["error_rate"] == 0.0
        assert stripe(settings, "GET", "/v1/invoices").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_advance_moves_the_clock(data_dir: Path) -> None:
    result = CliRunner().invoke(main, ["sandbox", "advance", "--data-dir", str(data_dir), "--days", "2"])
    assert result.exit_code == 0, result.output
    assert "Advanced 2 days up to 2026-08-03T00:00:00Z" in result.output
    con = store.connect(data_dir)
    assert store.Clock(con).now_ms // 1000 == 1785715200
    con.close()


def test_bad_options_say_what_to_fix(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_fault = runner.invoke(main, ["sandbox", "serve", "--data-dir", str(tmp_path), "--faults", "eror=0.1"])
    assert bad_fault.exit_code == 2 and "unknown fault setting" in bad_fault.output
    bad_rate = runner.invoke(main, ["sandbox", "generate", "--data-dir", str(tmp_path / "x"),
                                    "--fault-rate-for", "typo_type=0.1"])
    assert bad_rate.exit_code == 2 and "unknown fault type" in bad_rate.output
    missing = runner.invoke(main, ["sandbox", "advance", "--data-dir", str(tmp_path), "--days", "1"])
    assert missing.exit_code != 0 and "concord sandbox generate" in str(missing.exception or missing.output)
