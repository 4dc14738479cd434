"""The near-real-time path: a Stripe billing event reaches the CRM within minutes, not at the
next hourly sync.

`stripe_billing_events` polls Stripe's events feed (`GET /v1/events`, newest first) every
minute. Its cursor is the newest event it has seen; each tick reads the events after it,
oldest first (`ending_before`, at most `MAX_PAGES` pages; the rest are read next tick). When
any of them is about billing — `invoice.*`, `charge.*` (payments, refunds and
`charge.dispute.*`) or `credit_note.*`, which all change what a client owes — it requests a
run of `billing_events` (`orchestration.jobs`): Stripe's load, the dbt models between it and
the pushes, the pushes. The run does not take the events from the sensor: the Stripe source
follows the same feed from its own cursor, so it loads everything that changed up to the
moment it runs.

- **run_key** `stripe:<newest billing event id>`: a tick evaluated twice over the same feed
  requests the same key, and Dagster launches a key once.
- **First tick** (no cursor): the cursor is set to Stripe's newest event and nothing is
  requested. What happened before the sensor was switched on is the schedules' to load (the
  next hourly sync takes it); switching the sensor on must not by itself start a sync that
  pushes to the CRM. On an account with no events yet the cursor records that, and the first
  billing event starts a run.
- **Cursor past retention** (Stripe keeps events 30 days; a sensor stopped longer): one
  catch-up run is requested and the cursor restarts at the newest event. The source backfills
  tables whose own cursor expired.
- **A sync already queued** (`billing_events`, `incremental_sync` or `full_sync`, not yet
  started): nothing more is requested, since that run will load these events too; the cursor
  moves on.
- **Stripe unreachable, key refused, settings missing**: the tick is skipped with the message
  (a 401 names `SOURCES__STRIPE__API_KEY`), the cursor stays, and the next tick tries again;
  the sensor does not fail. Requests time out in seconds and are retried once, so a tick
  stays well within Dagster's sensor timeout.

Settings are the Stripe source's own (dlt: `SOURCES__STRIPE__BASE_URL`,
`SOURCES__STRIPE__API_KEY`, from the environment or `.dlt/secrets.toml`), read at every tick.
The key goes only into the Authorization header: not into the cursor, the run tags or a log
line, and any message that might quote it has it masked.

Default status STOPPED, like the schedules: it launches runs that push to the CRM, so an
operator starts it once credentials and the instance are in place.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from dataclasses import dataclass
from typing import Any, Mapping

import dagster as dg
import dlt
import requests

from ingestion.http import ApiClient, ApiRequestFailed, SourceError
from ingestion.http import RetryPolicy as HttpRetryPolicy
from ingestion.stripe.helpers import EventsExpired, client, get
from ingestion.stripe.settings import PAGE_LIMIT
from orchestration.jobs import (NOT_YET_STARTED, billing_events_job, full_sync_job, incremental_sync_job,
                                sync_in_progress)

BILLING_EVENTS = ("invoice.*", "charge.*", "credit_note.*")  # charge.* includes charge.dispute.* and charge.refund.*
NOT_A_CHANGE = ("invoice.upcoming",)  # a preview of an invoice that does not exist yet
MAX_PAGES = 10  # events read per tick, at most 1,000
TICK_HTTP = HttpRetryPolicy(max_transient=1, max_rate_limited=2, backoff_cap_s=2.0, timeout=(3.0, 10.0))
CARRIERS = (billing_events_job.name, incremental_sync_job.name, full_sync_job.name)  # runs that load Stripe and push


@dataclass(frozen=True)
class Cursor:
    """The newest Stripe event the sensor has seen (None: the account had none yet)."""

    last_event_id: str | None
    created: int | None = None

    @classmethod
    def at(cls, event: Mapping[str, Any] | None) -> Cursor:
        return cls(event["id"], event.get("created")) if event else cls(None)

    @classmethod
    def load(cls, raw: str | None) -> Cursor | None:
        """The cursor Dagster stored, or None on the first tick. A bare event id is accepted,
        so an operator can set the cursor from the UI."""
        if not raw:
            return None
        if raw.startswith("evt_"):
            return cls(raw)
        data = json.loads(raw)
        return cls(data.get("last_event_id"), data.get("created"))

    def dump(self) -> str:
        return json.dumps({"last_event_id": self.last_event_id, "created": self.created})

    def describe(self) -> str:
        if self.last_event_id is None:
            return "the account's first event"
        when = (f" ({dt.datetime.fromtimestamp(self.created, dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC)"
                if self.created else "")
        return f"{self.last_event_id}{when}"


class StripeSettingsMissing(SourceError):
    """A Stripe setting is not configured."""


def is_billing(event_type: str) -> bool:
    """Whether an event of this type changes what the CRM shows about a client's billing."""
    return event_type not in NOT_A_CHANGE and any(fnmatch.fnmatchcase(event_type, p) for p in BILLING_EVENTS)


def stripe_settings() -> tuple[str, str]:
    """(base URL, API key), resolved as the Stripe source resolves them."""
    base_url = dlt.config.get("sources.stripe.base_url")
    api_key = dlt.secrets.get("sources.stripe.api_key")
    missing = [name for name, value in (("SOURCES__STRIPE__BASE_URL", base_url), ("SOURCES__STRIPE__API_KEY", api_key))
               if not value]
    if missing:
        raise StripeSettingsMissing(f"stripe: {' and '.join(missing)} not set (environment or .dlt/secrets.toml); "
                                    f"the sensor cannot read Stripe's events")
    return str(base_url), str(api_key)


def newest_event(api: ApiClient) -> dict[str, Any] | None:
    data = get(api, "/v1/events", {"limit": 1})["data"]
    return data[0] if data else None


def events_after(api: ApiClient, cursor: Cursor, max_pages: int = MAX_PAGES) -> list[dict[str, Any]]:
    """Events newer than the cursor, oldest first, at most `max_pages` pages of them.

    Raises:
        EventsExpired: the cursor's event is no longer listed.
    """
    if cursor.last_event_id is None:  # the account had no events: all of them are new
        page = get(api, "/v1/events", {"limit": PAGE_LIMIT})
        return list(reversed(page["data"]))
    events: list[dict[str, Any]] = []
    before = cursor.last_event_id
    for _ in range(max_pages):
        try:
            page = get(api, "/v1/events", {"limit": PAGE_LIMIT, "ending_before": before})
        except ApiRequestFailed as exc:
            error = exc.body.get("error") if isinstance(exc.body, Mapping) else None
            if exc.status in (400, 404) and isinstance(error, Mapping) and error.get("code") == "resource_missing":
                raise EventsExpired(before) from exc
            raise
        data = page["data"]
        events.extend(reversed(data))
        if not page.get("has_more") or not data:
            break
        before = data[0]["id"]
    return events


def _queued_carrier(context: dg.SensorEvaluationContext) -> dg.DagsterRun | None:
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # evaluated without an instance (a bare unit test)
        return None
    return sync_in_progress(instance, CARRIERS, NOT_YET_STARTED)


def _request(events: list[dict[str, Any]], why: str) -> dg.RunRequest:
    newest = events[-1]
    types = sorted({event.get("type", "?") for event in events})
    return dg.RunRequest(run_key=f"stripe:{newest['id']}", tags={
        "concord/trigger": why,
        "concord/stripe_events": str(len(events)),
        "concord/stripe_event_types": ", ".join(types)[:200],
        "concord/newest_stripe_event": newest["id"],
    })


def evaluate(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """One tick of `stripe_billing_events` (see the module docstring)."""
    try:
        previous = Cursor.load(context.cursor)
    except (ValueError, AttributeError):
        context.log.warning("stripe_billing_events: the stored cursor is not one this sensor wrote; starting afresh")
        previous = None
    api_key = ""
    try:
        base_url, api_key = stripe_settings()
        api = client(base_url, api_key)
        api.policy = TICK_HTTP
        if previous is None:
            cursor = Cursor.at(newest_event(api))
            message = (f"First tick: following Stripe's events from {cursor.describe()}; earlier changes are "
                       f"the schedules' to load" if cursor.last_event_id else
                       "First tick: Stripe has no events yet; the first billing event will request a run")
            context.log.info(message)
            return dg.SensorResult(skip_reason=message, cursor=cursor.dump())
        try:
            events = events_after(api, previous)
        except EventsExpired:
            newest = newest_event(api)
            message = (f"The last event seen, {previous.describe()}, is past Stripe's 30-day event retention; "
                       f"requesting one catch-up run")
            context.log.warning(message)
            if newest is None:
                return dg.SensorResult(skip_reason=message + " when events appear", cursor=Cursor(None).dump())
            return dg.SensorResult(run_requests=[_request([newest], "stripe_events_expired")],
                                   cursor=Cursor.at(newest).dump())
    except (SourceError, requests.RequestException, ValueError, KeyError, TypeError) as exc:
        # a refused key, Stripe unreachable or failing, settings missing, or an answer that is not Stripe's
        message = str(exc) if isinstance(exc, SourceError) else \
            f"stripe: reading the events feed failed ({type(exc).__name__}: {exc})"
        message = message.replace(api_key, "sk_***") if api_key else message
        context.log.warning(f"stripe_billing_events: {message}")
        return dg.SkipReason(message)

    if not events:
        return dg.SkipReason(f"No new Stripe events since {previous.describe()}")
    cursor = Cursor.at(events[-1])
    billing = [event for event in events if is_billing(event.get("type", ""))]
    if not billing:
        types = ", ".join(sorted({event.get("type", "?") for event in events}))
        return dg.SensorResult(skip_reason=f"{len(events)} new Stripe events, none about billing ({types})",
                               cursor=cursor.dump())
    queued = _queued_carrier(context)
    if queued is not None:
        message = (f"{len(billing)} new Stripe billing events; {queued.job_name} run {queued.run_id} has not "
                   f"started yet and will load them")
        context.log.info(message)
        return dg.SensorResult(skip_reason=message, cursor=cursor.dump())
    request = _request(billing, "stripe_billing_events")
    context.log.info(f"{len(billing)} new Stripe billing events ({request.tags['concord/stripe_event_types']}); "
                     f"requesting billing_events with run key {request.run_key}")
    return dg.SensorResult(run_requests=[request], cursor=cursor.dump())


@dg.sensor(
    name="stripe_billing_events", job=billing_events_job, minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Polls Stripe's events feed every minute; invoice, payment, dispute and credit-note events request "
                "a billing_events run (Stripe's load, the dbt models between it and the CRM, the pushes), one per "
                "newest event id. Stripe errors skip the tick with the reason.")
def stripe_billing_events(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    return evaluate(context)


SENSORS = [stripe_billing_events]
