"""Jobs, schedules, the Stripe billing-events sensor and run-failure alerting, for real:

- the definitions load, every job resolves to the assets it promises, vendor steps carry retries;
- the schedules evaluate to a run of their job, and the hourly one skips while a sync runs;
- the sensor polls a real sandbox Stripe on a loopback port: first tick sets the cursor, an idle
  tick costs one request and requests nothing, billing events request one `billing_events` run
  under a stable run key, errors skip the tick with the reason, never crash;
- a run that really failed is posted to a real HTTP receiver on 127.0.0.1, once, naming the job,
  the run and each failed step with its error; with no webhook it is only logged;
- the shipped `dagster.yaml` is a valid instance config with the limits the assets rely on.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import dagster as dg
import pytest
import requests

from orchestration import alerts, jobs
from orchestration.alerts import alert_on_run_failure
from orchestration.definitions import defs
from orchestration.retries import LOAD_RETRY, PUSH_RETRY
from orchestration.sensors import Cursor, is_billing, stripe_billing_events
from sandbox.server.app import RunningServer

REPO = Path(__file__).resolve().parents[2]
STRIPE_ENV = ("SOURCES__STRIPE__BASE_URL", "SOURCES__STRIPE__API_KEY")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


# --- jobs -------------------------------------------------------------------------------------

def selected(job_name: str) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_job_def(job_name).asset_layer.selected_asset_keys}


def test_the_definitions_load_and_every_job_resolves() -> None:
    dg.Definitions.validate_loadable(defs)
    assert {job.name for job in defs.jobs} == {"full_sync", "incremental_sync", "billing_events", "ingest", "push_crm"}
    assert {s.name: s.job_name for s in defs.schedules} == {
        "hourly_incremental_sync": "incremental_sync", "nightly_full_sync": "full_sync"}
    assert {s.name for s in defs.sensors} == {"stripe_billing_events", "alert_on_run_failure"}
    assert stripe_billing_events.job_name == "billing_events"

    everything = {k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys}
    raw = {k for k in everything if k.startswith("raw/")}
    crm = {"crm/companies", "crm/deals", "crm/timeline_notes"}
    assert selected("full_sync") == everything
    assert raw | crm <= selected("incremental_sync") <= everything
    reports = {k for k in everything if k.startswith("reports/")}  # the reconciliation report: nightly only
    assert reports and everything - selected("incremental_sync") == reports
    assert selected("ingest") == raw
    assert selected("push_crm") == crm

    billing = selected("billing_events")
    assert {k for k in billing if k.startswith("raw/")} == {k for k in raw if k.startswith("raw/stripe/")}
    assert crm <= billing
    assert {"crm_sync/sync_hubspot__companies", "staging/stg_stripe__invoices", "core/invoices"} <= billing
    assert not any(k.startswith(("staging/stg_hubspot", "staging/stg_harvest", "staging/stg_erp")) for k in billing)
    assert len(billing) < len(everything) / 2
    for name in ("full_sync", "incremental_sync", "billing_events", "ingest"):
        assert defs.resolve_job_def(name).tags[jobs.WAREHOUSE_TAG] == "write"


def test_vendor_steps_retry_and_the_rest_do_not() -> None:
    ops = {node.name: node.definition.retry_policy for node in defs.resolve_job_def("full_sync").graph.nodes}
    systems = ("hubspot", "stripe", "harvest", "erp")
    assert {f"raw_{system}": ops[f"raw_{system}"] for system in systems} == {f"raw_{s}": LOAD_RETRY for s in systems}
    assert {name: policy for name, policy in ops.items() if name.startswith("crm__")} == {
        f"crm__{t}": PUSH_RETRY for t in ("companies", "deals", "timeline_notes")}
    assert ops["dbt_models"] is None
    for policy in (LOAD_RETRY, PUSH_RETRY):
        assert policy.max_retries >= 2 and policy.backoff == dg.Backoff.EXPONENTIAL and policy.jitter is not None


def test_refused_credentials_fail_a_load_without_a_retry(serve, empty_state, instance, monkeypatch) -> None:
    server = serve(empty_state)
    monkeypatch.setenv("SOURCES__STRIPE__BASE_URL", server.client_settings()["SOURCES__STRIPE__BASE_URL"])
    monkeypatch.setenv("SOURCES__STRIPE__API_KEY", "sk_test_not_the_key")
    monkeypatch.setenv("CONCORD_WAREHOUSE", str(empty_state.parent / "warehouse.duckdb"))
    started = time.monotonic()
    result = defs.resolve_job_def("ingest").execute_in_process(
        instance=instance, raise_on_error=False,
        asset_selection=[dg.AssetKey(["raw", "stripe", "invoices"])])
    assert not result.success and time.monotonic() - started < 30
    types = [e.event_type for e in result.all_events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in types
    failure, = [e for e in result.all_events if e.is_step_failure]
    assert "SOURCES__STRIPE__API_KEY" in failure.step_failure_data.user_failure_data.description


# --- schedules --------------------------------------------------------------------------------

def a_run(instance: dg.DagsterInstance, job_name: str, status: dg.DagsterRunStatus) -> dg.DagsterRun:
    """A run record of `job_name` in `status`, as the daemon would see it."""
    return instance.add_run(dg.DagsterRun(job_name=job_name, run_id=str(uuid.uuid4()), status=status))


def test_the_schedules_request_their_jobs(instance) -> None:
    hourly, nightly = jobs.hourly_incremental_sync, jobs.nightly_full_sync
    assert (hourly.cron_schedule, nightly.cron_schedule) == ("0 0-1,3-23 * * *", "0 2 * * *")
    assert hourly.execution_timezone == nightly.execution_timezone == "UTC"
    assert hourly.default_status == nightly.default_status == dg.DefaultScheduleStatus.STOPPED
    for schedule, job_name in ((hourly, "incremental_sync"), (nightly, "full_sync")):
        data = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        request, = data.run_requests
        assert schedule.job_name == job_name and data.skip_message is None
        assert request.tags["dagster/schedule_name"] == schedule.name


def test_the_hourly_schedule_skips_while_a_sync_is_running(instance) -> None:
    running = a_run(instance, "full_sync", dg.DagsterRunStatus.STARTED)
    data = jobs.hourly_incremental_sync.evaluate_tick(dg.build_schedule_context(instance=instance))
    assert not data.run_requests and running.run_id in data.skip_message
    # the nightly full run is never skipped: it queues behind whatever runs (one warehouse writer)
    assert jobs.nightly_full_sync.evaluate_tick(dg.build_schedule_context(instance=instance)).run_requests


def test_the_schedule_timezone_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(jobs.TIMEZONE_ENV, raising=False)
    assert jobs.schedule_timezone() == "UTC"
    monkeypatch.setenv(jobs.TIMEZONE_ENV, "Europe/Amsterdam")
    assert jobs.schedule_timezone() == "Europe/Amsterdam"
    monkeypatch.setenv(jobs.TIMEZONE_ENV, "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match=jobs.TIMEZONE_ENV):
        jobs.schedule_timezone()


# --- the Stripe billing-events sensor ----------------------------------------------------------

class Stripe:
    """The sandbox's Stripe, written to through its API the way an accountant's actions would."""

    def __init__(self, server: RunningServer):
        self.server = server
        settings = server.client_settings()
        self.base_url, self.key = settings["SOURCES__STRIPE__BASE_URL"], settings["SOURCES__STRIPE__API_KEY"]

    def post(self, path: str, **data: Any) -> dict[str, Any]:
        response = requests.post(f"{self.base_url}{path}", data=data, timeout=10,
                                 headers={"Authorization": f"Bearer {self.key}"})
        assert response.status_code == 200, response.text
        return response.json()

    def events(self) -> list[dict[str, Any]]:
        """Every event, newest first."""
        response = requests.get(f"{self.base_url}/v1/events", params={"limit": 100}, timeout=10,
                                headers={"Authorization": f"Bearer {self.key}"})
        return response.json()["data"]

    def invoice_paid(self, customer: str) -> dict[str, Any]:
        self.post("/v1/invoiceitems", customer=customer, currency="eur", amount="250000", description="Audit, phase 1")
        invoice = self.post("/v1/invoices", customer=customer, currency="eur", collection_method="send_invoice",
                            days_until_due="30", pending_invoice_items_behavior="include")
        self.post(f"/v1/invoices/{invoice['id']}/finalize")
        return self.post(f"/v1/invoices/{invoice['id']}/pay")

    def requests_served(self) -> dict[str, int]:
        return requests.get(f"{self.server.base_url}/_sandbox/stats", timeout=10).json().get("stripe", {})

    def reset_requests(self) -> None:
        requests.delete(f"{self.server.base_url}/_sandbox/stats", timeout=10)


@pytest.fixture
def stripe(serve, empty_state, monkeypatch) -> Stripe:
    """An empty Stripe account on a real sandbox server, and the sensor's settings pointing at it."""
    api = Stripe(serve(empty_state))
    monkeypatch.setenv("SOURCES__STRIPE__BASE_URL", api.base_url)
    monkeypatch.setenv("SOURCES__STRIPE__API_KEY", api.key)
    return api


def tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[list[dg.RunRequest], str | None, str | None]:
    """(run requests, skip message, the cursor after the tick) of one evaluation."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                      sensor_name=stripe_billing_events.name)
    data = stripe_billing_events.evaluate_tick(context)
    return list(data.run_requests or []), data.skip_message, data.cursor if data.cursor is not None else cursor


def test_billing_events_request_one_billing_events_run(stripe: Stripe, instance) -> None:
    # first tick, on an account with no events yet: the cursor records it, nothing is requested
    runs, skipped, cursor = tick(instance, None)
    assert not runs and "no events yet" in skipped
    assert Cursor.load(cursor) == Cursor(None)

    # events that are not about billing move the cursor and request nothing
    customer = stripe.post("/v1/customers", name="Halvorsen Partners", **{"metadata[erp_customer_ref]": "C-9001"})
    stripe.post(f"/v1/customers/{customer['id']}", email="ap@halvorsen.example")
    runs, skipped, cursor = tick(instance, cursor)
    assert not runs and "none about billing" in skipped and "customer.updated" in skipped
    assert Cursor.load(cursor).last_event_id == stripe.events()[0]["id"]

    # an idle tick: one request, no run, the cursor as it was
    stripe.reset_requests()
    runs, skipped, after = tick(instance, cursor)
    assert not runs and skipped.startswith("No new Stripe events") and after == cursor
    assert stripe.requests_served() == {"GET /v1/events": 1}

    # an invoice issued and paid: one run of billing_events, keyed by the newest billing event
    stripe.invoice_paid(customer["id"])
    events = stripe.events()
    new = events[:next(i for i, e in enumerate(events) if e["id"] == Cursor.load(cursor).last_event_id)]
    assert {e["type"] for e in new} >= {"invoice.created", "invoice.finalized", "invoice.paid", "charge.succeeded"}
    billing = [e for e in new if e["type"].startswith(("invoice.", "charge.", "credit_note."))]
    runs, skipped, moved = tick(instance, cursor)
    request, = runs
    assert skipped is None
    assert request.run_key == f"stripe:{billing[0]['id']}"
    assert request.tags["concord/stripe_events"] == str(len(billing))
    assert "invoice.paid" in request.tags["concord/stripe_event_types"]
    assert Cursor.load(moved).last_event_id == events[0]["id"]
    assert stripe.key not in moved and stripe.key not in json.dumps(request.tags)

    # the same tick again (a retried evaluation): the same run key, which Dagster launches once
    again, _, _ = tick(instance, cursor)
    assert [r.run_key for r in again] == [request.run_key]
    # the next tick sees nothing new
    runs, skipped, _ = tick(instance, moved)
    assert not runs and skipped.startswith("No new Stripe events")


def test_first_tick_on_an_account_with_history_requests_nothing(stripe: Stripe, instance) -> None:
    customer = stripe.post("/v1/customers", name="Brightwater LLP")
    stripe.invoice_paid(customer["id"])
    runs, skipped, cursor = tick(instance, None)
    assert not runs and skipped.startswith("First tick")
    assert Cursor.load(cursor).last_event_id == stripe.events()[0]["id"]
    runs, skipped, _ = tick(instance, cursor)
    assert not runs and skipped.startswith("No new Stripe events")


def test_the_cursor_and_what_counts_as_billing() -> None:
    cursor = Cursor("evt_1NzTiK2eZvKYlo2C", 1_793_491_200)
    assert Cursor.load(cursor.dump()) == cursor and Cursor.load(Cursor(None).dump()) == Cursor(None)
    assert Cursor.load("evt_set_by_an_operator") == Cursor("evt_set_by_an_operator")  # from the UI
    assert Cursor.load(None) is None and Cursor.load("") is None
    billing = ("invoice.paid", "invoice.voided", "charge.succeeded", "charge.refunded", "charge.dispute.created",
               "credit_note.created")
    other = ("customer.updated", "invoice.upcoming", "invoiceitem.created", "payout.paid")
    assert [is_billing(t) for t in billing + other] == [True] * len(billing) + [False] * len(other)


def test_a_cursor_past_retention_requests_one_catch_up_run(stripe: Stripe, instance) -> None:
    stripe.post("/v1/customers", name="Brightwater LLP")
    runs, skipped, cursor = tick(instance, Cursor("evt_expired_long_ago", 1_600_000_000).dump())
    request, = runs
    newest = stripe.events()[0]["id"]
    assert request.run_key == f"stripe:{newest}" and request.tags["concord/trigger"] == "stripe_events_expired"
    assert Cursor.load(cursor).last_event_id == newest


def test_no_second_run_while_one_waits_to_start(stripe: Stripe, instance) -> None:
    customer = stripe.post("/v1/customers", name="Brightwater LLP")
    _, _, cursor = tick(instance, None)
    queued = a_run(instance, "billing_events", dg.DagsterRunStatus.NOT_STARTED)
    stripe.invoice_paid(customer["id"])
    runs, skipped, moved = tick(instance, cursor)
    assert not runs and queued.run_id in skipped and "will load them" in skipped
    assert Cursor.load(moved).last_event_id == stripe.events()[0]["id"]


def test_stripe_errors_skip_the_tick_and_keep_the_cursor(stripe: Stripe, instance, monkeypatch, tmp_path) -> None:
    stripe.post("/v1/customers", name="Brightwater LLP")
    _, _, cursor = tick(instance, None)

    wrong = "sk_test_" + "x" * 24
    monkeypatch.setenv("SOURCES__STRIPE__API_KEY", wrong)
    runs, skipped, after = tick(instance, cursor)
    assert not runs and after == cursor
    assert "SOURCES__STRIPE__API_KEY" in skipped and "401" in skipped and wrong not in skipped

    monkeypatch.delenv("SOURCES__STRIPE__API_KEY")
    monkeypatch.chdir(tmp_path)  # no .dlt/secrets.toml to find the key in either
    runs, skipped, after = tick(instance, cursor)
    assert not runs and after == cursor and "SOURCES__STRIPE__API_KEY not set" in skipped

    monkeypatch.setenv("SOURCES__STRIPE__API_KEY", stripe.key)
    stripe.server.__exit__(None, None, None)  # Stripe goes away: connection refused
    started = time.monotonic()
    runs, skipped, after = tick(instance, cursor)
    assert not runs and after == cursor and "is the API reachable" in skipped
    assert time.monotonic() - started < 10


# --- run-failure alerting ---------------------------------------------------------------------

class Receiver:
    """A webhook on 127.0.0.1: keeps every POST's JSON, answers `status`."""

    def __init__(self, status: int = 200):
        self.posts: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append({"content_type": self.headers["Content-Type"], "json": json.loads(body)})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/concord"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def failed_push(instance, monkeypatch, tmp_path) -> dg.ExecuteInProcessResult:
    """A real `push_crm` run of `crm/companies` that fails: HubSpot is not configured."""
    monkeypatch.chdir(tmp_path)  # no .dlt/secrets.toml either
    monkeypatch.delenv("SOURCES__HUBSPOT__BASE_URL", raising=False)
    monkeypatch.setenv("SOURCES__HUBSPOT__ACCESS_TOKEN", "pat-na1-0123456789abcdef")
    monkeypatch.setenv("CONCORD_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    result = defs.resolve_job_def("push_crm").execute_in_process(
        instance=instance, raise_on_error=False, asset_selection=[dg.AssetKey(["crm", "companies"])])
    assert not result.success
    return result


def evaluate_alert(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name=alert_on_run_failure.name, dagster_instance=instance, dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event())
    alert_on_run_failure(context)


def test_a_failed_run_is_posted_once_naming_job_run_and_failed_step(
        failed_push, instance, receiver, monkeypatch, caplog) -> None:
    monkeypatch.setenv(alerts.WEBHOOK_ENV, receiver.url)
    monkeypatch.setenv(alerts.UI_URL_ENV, "http://dagster.internal:3000/")
    with caplog.at_level(logging.INFO, logger="concord.alerts"):
        evaluate_alert(instance, failed_push)

    post, = receiver.posts
    alert = post["json"]
    assert post["content_type"] == "application/json"
    assert (alert["job"], alert["run_id"], alert["event"]) == ("push_crm", failed_push.run_id, "run_failure")
    step, = alert["failed_steps"]
    assert step["step"] == "crm__companies" and step["error_type"] == "Failure"
    assert step["error"].startswith("crm/companies:") and "SOURCES__HUBSPOT__BASE_URL" in step["error"]
    assert "\n" not in step["error"]
    assert alert["run_url"] == f"http://dagster.internal:3000/runs/{failed_push.run_id}"
    assert alert["failed_at"].endswith("+00:00") and alert["failure_reason"] == "STEP_FAILURE"
    assert failed_push.run_id in alert["text"] and "crm__companies" in alert["text"]
    assert "pat-na1-0123456789abcdef" not in json.dumps(alert)
    assert failed_push.run_id in caplog.text and receiver.url not in caplog.text


def test_without_a_webhook_the_alert_is_only_logged(failed_push, instance, receiver, monkeypatch, caplog) -> None:
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    with caplog.at_level(logging.INFO, logger="concord.alerts"):
        evaluate_alert(instance, failed_push)
    assert receiver.posts == []
    logged = [r for r in caplog.records if r.name == "concord.alerts" and r.levelno == logging.ERROR]
    assert len(logged) == 1 and failed_push.run_id in logged[0].getMessage()
    assert "crm__companies" in logged[0].getMessage()


def test_a_webhook_that_fails_never_fails_the_sensor(failed_push, instance, monkeypatch) -> None:
    refusing = Receiver(status=500)
    try:
        monkeypatch.setenv(alerts.WEBHOOK_ENV, refusing.url)
        evaluate_alert(instance, failed_push)
        assert len(refusing.posts) == 1
    finally:
        refusing.close()
    monkeypatch.setenv(alerts.WEBHOOK_ENV, refusing.url)  # now nothing listens there
    started = time.monotonic()
    evaluate_alert(instance, failed_push)
    assert time.monotonic() - started < 15


def test_secrets_are_masked_in_an_alert(monkeypatch) -> None:
    monkeypatch.setenv("SOURCES__STRIPE__API_KEY", "sk_test_abcdefghijklmnop")
    text = alerts.redact("401 for sk_test_abcdefghijklmnop at postgresql://concord:hunter22@erp.internal/odoo")
    assert text == "401 for <SOURCES__STRIPE__API_KEY> at postgresql://concord:***@erp.internal/odoo"


# --- the instance ----------------------------------------------------------------------------

def test_the_shipped_dagster_yaml_limits_the_pools_and_warehouse_runs(tmp_path) -> None:
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1  # warehouse and crm_push
        limits = config.run_queue_config.tag_concurrency_limits
        assert {"key": jobs.WAREHOUSE_TAG, "value": "write", "limit": 1} in limits
        assert config.run_queue_config.max_concurrent_runs >= 2
    finally:
        instance.dispose()
    pools = {pool for node in defs.resolve_asset_graph().asset_nodes for pool in node.pools or ()}
    assert pools >= {"warehouse", "crm_push"}
