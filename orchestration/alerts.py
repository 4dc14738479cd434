"""Alerting on failed runs: every run of this code location that fails is logged, and posted as
JSON to a webhook when one is configured, so a failed night is known before anyone opens the UI.

The alert (`build_alert`): the job, the run id, when it failed, why (Dagster's failure message
and the `dagster/failure_reason` tag), each failed step with the first line of its error (a
`dg.Failure`'s description, else the innermost exception), what started the run (schedule,
sensor, backfill) and, with `DAGSTER_UI_URL` set (e.g. `http://localhost:3000`), a link to the
run. `text` holds the same in one paragraph, which is what a Slack or Teams incoming webhook
shows; other receivers read the fields.

Settings, read at every evaluation: `CONCORD_ALERT_WEBHOOK_URL` (unset: the alert is only
logged) and `DAGSTER_UI_URL`. They are plain environment variables rather than a resource's
`dg.EnvVar`, because both are optional and an unset `EnvVar` fails the sensor.

What the alert never carries: the environment, run config, or any value of a setting whose name
says it is secret (`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*CREDENTIALS*`), masked should
an error message quote one, nor a password in a URL. The webhook URL itself (often a secret) is
not logged, only its host.

Posting never raises: a timeout, a refused connection or a non-2xx answer is logged as a
warning, and the sensor moves on to the next failure (an alert is not worth a crash loop).

Default status RUNNING, unlike the schedules: it launches nothing and only reports, and an
alert that somebody first has to switch on is missed on exactly the night it matters.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import requests

WEBHOOK_ENV = "CONCORD_ALERT_WEBHOOK_URL"
UI_URL_ENV = "DAGSTER_UI_URL"
TIMEOUT_S = (3.05, 10.0)  # connect, read
SECRET_NAMES = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(\w+://[^/\s:@]+):[^@\s/]+@")
TRIGGER_TAGS = {"dagster/schedule_name": "schedule", "dagster/sensor_name": "sensor", "dagster/backfill": "backfill"}

logger = logging.getLogger("concord.alerts")


def redact(text: str) -> str:
    """`text` with the values of secret-named environment variables and URL passwords masked."""
    for name, value in os.environ.items():
        if len(value) >= 8 and SECRET_NAMES.search(name) and value in text:
            text = text.replace(value, f"<{name}>")
    return URL_PASSWORD.sub(r"\1:***@", text)


def first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


def step_error(event: dg.DagsterEvent) -> dict[str, str]:
    """A failed step and the first line of why: a `dg.Failure`'s description, else the innermost error."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        kind, message = "Failure", first_line(data.user_failure_data.description)
    else:
        error = data.error
        while error is not None and error.cause is not None:
            error = error.cause
        kind = error.cls_name if error is not None else "Error"
        message = first_line(error.message if error is not None else event.message)
        message = message.removeprefix(f"{kind}: ") if kind else message
    return {"step": event.step_key or "", "error_type": kind or "Error", "error": redact(message)}


def build_alert(context: dg.RunFailureSensorContext) -> dict[str, Any]:
    """The alert for the run `context` reports (see the module docstring)."""
    run = context.dagster_run
    record = context.instance.get_run_record_by_id(run.run_id)
    end_time = record.end_time if record is not None and record.end_time else None
    failed_at = dt.datetime.fromtimestamp(end_time, dt.timezone.utc) if end_time else dt.datetime.now(dt.timezone.utc)
    steps = [step_error(event) for event in context.get_step_failure_events()]
    ui_url = os.environ.get(UI_URL_ENV)
    run_url = f"{ui_url.rstrip('/')}/runs/{run.run_id}" if ui_url else None
    trigger = {label: run.tags[tag] for tag, label in TRIGGER_TAGS.items() if tag in run.tags}
    message = redact(first_line(context.failure_event.message))
    text = (f"Concord: {run.job_name} run {run.run_id} failed at {failed_at:%Y-%m-%d %H:%M:%S} UTC. "
            + " ".join(f"{s['step']}: {s['error']}" for s in steps)
            + ("" if steps else message)
            + (f" {run_url}" if run_url else ""))
    return {
        "source": "concord",
        "event": "run_failure",
        "job": run.job_name,
        "run_id": run.run_id,
        "failed_at": failed_at.isoformat(),
        "message": message,
        "failure_reason": run.tags.get("dagster/failure_reason"),
        "failed_steps": steps,
        "trigger": trigger,
        "run_url": run_url,
        "text": text,
    }


def post_alert(url: str, alert: dict[str, Any], log: logging.Logger | Any = logger) -> bool:
    """POST `alert` as JSON to `url`; whether the receiver accepted it. Never raises."""
    host = urlsplit(url).netloc or "the webhook"
    try:
        response = requests.post(url, data=json.dumps(alert), timeout=TIMEOUT_S,
                                 headers={"Content-Type": "application/json", "User-Agent": "concord-alerts"})
    except requests.RequestException as exc:
        log.warning(f"alert for run {alert['run_id']} not delivered to {host}: {type(exc).__name__}")
        return False
    if not response.ok:
        log.warning(f"alert for run {alert['run_id']} refused by {host}: HTTP {response.status_code} "
                    f"{redact(response.text[:200])}")
        return False
    log.info(f"alert for run {alert['run_id']} delivered to {host}")
    return True


@dg.run_failure_sensor(
    name="alert_on_run_failure", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Logs every failed run with its failed steps and errors, and posts it as JSON to "
                f"{WEBHOOK_ENV} when set (a link to the run when {UI_URL_ENV} is set).")
def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
    alert = build_alert(context)
    context.log.error(alert["text"])
    logger.error(alert["text"])
    url = os.environ.get(WEBHOOK_ENV)
    if url:
        post_alert(url, alert, context.log)
    else:
        context.log.info(f"{WEBHOOK_ENV} is not set; the alert is only logged")
