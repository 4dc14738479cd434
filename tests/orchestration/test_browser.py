"""The operator's view in a real browser: `dagster-webserver` over a pushed firm, headless Chromium.

With the sandbox serving a built small firm and the CRM push and the reconciliation report
materialised into a persistent Dagster instance, headless Chromium (Debian's `chromium`) loads
the UI's `crm` asset group, the report asset's page and the report itself. The test saves a
screenshot of each (in `CONCORD_SCREENSHOT_DIR`, default the test's temp dir) and asserts on
what the pages show: the asset names, their materialisations, the report's link, and every
exception type of the warehouse with its count.

Chromium is a system package (`apt-get install chromium`, done by `.ci/run`). Without it the
test is skipped, unless `CONCORD_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import dagster as dg
import pytest
import requests

from orchestration.definitions import ASSET_CHECKS, ASSETS, RESOURCES
from tests.reverse_etl.conftest import Firm, firm  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]
LOCATION = "orchestration.definitions"
REPORT_KEY = dg.AssetKey(["reports", "reconciliation_report"])
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None and os.environ.get("CONCORD_REQUIRE_BROWSER") != "1":
    pytest.skip("headless Chromium is not installed (apt-get install chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium(url: str, screenshot: Path) -> tuple[str, str]:
    """The page's DOM and text once its scripts have run (and a screenshot of it)."""
    assert CHROMIUM, "CONCORD_REQUIRE_BROWSER=1 but chromium is not installed"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--hide-scrollbars", "--window-size=1600,1100", "--virtual-time-budget=25000"]
    subprocess.run([*flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return dom, " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


@pytest.fixture
def ui(firm: Firm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Firm, dict]]:  # noqa: F811
    """The firm pushed and reported into a persistent instance, and dagster-webserver over it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**firm.w.env(), "DAGSTER_HOME": str(home), "CONCORD_REPORT_DIR": str(tmp_path / "reports")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    selection = dg.AssetSelection.groups("crm") | dg.AssetSelection.assets(REPORT_KEY)
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([*ASSETS, *ASSET_CHECKS], selection=selection, resources=RESOURCES,
                                instance=instance, raise_on_error=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    materialised = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
         "-p", str(port)], cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "webserver.log").open("w"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{base}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "webserver.log").read_text()
            time.sleep(0.5)
        yield base, firm, materialised
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_ui_shows_the_crm_assets_and_the_report(ui, tmp_path: Path) -> None:
    base, firm, materialised = ui
    shots = Path(os.environ.get("CONCORD_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    _, group = chromium(f"{base}/locations/{LOCATION}/asset-groups/crm", shots / "ui_crm_assets.png")
    for name in ("companies", "deals", "timeline_notes", "sync_hubspot__companies", "sync_hubspot__deals",
                 "sync_hubspot__timeline_events"):
        assert name in group, f"{name} is not on the crm asset group's page"
    assert "Never materialized" not in group.split("sync_hubspot__companies")[0], "the pushes show as materialised"

    _, page = chromium(f"{base}/assets/reports/reconciliation_report", shots / "ui_report_asset.png")
    report_path = materialised[REPORT_KEY]["report"].value
    assert "reconciliation_report" in page and Path(report_path).name in page, "the report's link is on its page"

    dom, _ = chromium(Path(report_path).as_uri(), shots / "reconciliation_report.png")
    start = dom.index('id="by-type"')
    section = dom[start:dom.index("</section>", start)]
    shown = dict(re.findall(r'<tr data-exception-type="([a-z_]+)">.*?class="num count">([\d,]+)<', section))
    expected = firm.query("SELECT exception_type, count(*) FROM reconciliation.reconciliation_exceptions GROUP BY 1")
    assert expected and {t: int(n.replace(",", "")) for t, n in shown.items() if t in dict(expected)} == dict(expected)
    for png in ("ui_crm_assets.png", "ui_report_asset.png", "reconciliation_report.png"):
        assert (shots / png).stat().st_size > 10_000, f"{png} is blank"
