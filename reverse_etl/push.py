"""A push of one object type: diff, guards, property setup, batches, outcomes, counts.

    result = push("companies")                  # or "deals"; settings from the environment
    result = push("companies", confirm=True)    # past a guard that refused
    preview = push("companies", dry_run=True)   # the per-record diff; no HTTP call at all

The order of work is what makes it safe:
1. Read the sync model, the confirmed values, the dead letters and the loads' ages (one
   warehouse connection, closed before any HTTP call). A null or duplicate key fails here.
2. Diff, then the guards; a refusal is recorded and raised unless `confirm=True`.
3. Make sure the properties exist (only when something is to be sent).
4. Per batch of ≤ `batch_size` records: audit rows `sending` → batch update → one transaction
   recording the answer (accepted values confirmed, rejected records dead-lettered). A value is
   confirmed only by the CRM's answer, so a killed push re-sends exactly the batches whose answer
   it did not record, and a confirmed batch is never sent again.
5. A whole-batch 4xx is split in halves until the bad records stand alone (then they are dead
   letters); the daily limit stops the run (status `stopped`) and retries running out fail it
   (status `failed`), the rest pending either way.

Counts (`PushResult`): every record of the sync model is exactly one of `sent` (accepted this
run), `unchanged`, `pending` (differs and not accepted: the next run sends it — rejected ones
below the retry limit included) or `parked` (rejected `dead_letter_max_attempts` times; held until
an operator requeues it). `rejected` counts this run's rejections. The status is `success` only
when nothing is pending or parked.

`CONCORD_CRASH_AFTER=batch:N` kills the process right after batch N's answer is recorded,
`send:N` right after HubSpot answered batch N but before the answer is recorded (tests).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from reverse_etl import state
from reverse_etl.client import HubSpotClient
from reverse_etl.contract import ObjectSpec, spec_for
from reverse_etl.diff import Diff, RecordChange, compute, read_sync_model
from reverse_etl.errors import (
    BatchRejected,
    CredentialsRejected,
    CrmUnavailable,
    DailyLimitReached,
    GuardRefused,
)
from reverse_etl.guards import GuardReport, evaluate, latest_loads
from reverse_etl.properties import ensure_properties
from reverse_etl.settings import Settings
from reverse_etl.state import RecordOutcome

logger = logging.getLogger("concord.reverse_etl")

CRASH_ENV = "CONCORD_CRASH_AFTER"


@dataclass
class PushResult:
    """What one push (or dry run) of one object type did; `as_metadata()` for Dagster."""

    run_id: str
    object_type: str
    mode: str  # push | dry_run
    status: str = "running"  # success | partial | stopped | failed | refused | dry_run
    total: int = 0
    changed: int = 0
    sent: int = 0
    unchanged: int = 0
    rejected: int = 0
    pending: int = 0
    parked: int = 0
    write_calls: int = 0
    batches: int = 0
    requests: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    first_push: bool = False
    confirmed_by_operator: bool = False
    guard_refusals: list[str] = field(default_factory=list)
    message: str | None = None
    changes: list[RecordChange] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """Everything the CRM should show, it confirmed (a dry run is never ok)."""
        return self.status == "success"

    def as_metadata(self) -> dict[str, Any]:
        """Counts and status as plain values, without the per-record changes."""
        data = {k: v for k, v in asdict(self).items() if k != "changes"}
        data["guard_refusals"] = "; ".join(self.guard_refusals)
        data["seconds"] = round(self.seconds, 3)
        return data

    def diff_table(self) -> list[tuple[str, str, str | None, str]]:
        """(record id, property, old, new) for every value the push sends (or would send)."""
        return [(c.record_id, prop, old, new) for c in self.changes for prop, (old, new) in c.properties.items()]


def push(object_type: str, *, settings: Settings | None = None, confirm: bool = False, dry_run: bool = False,
         client: HubSpotClient | None = None) -> PushResult:
    """Push what changed in `crm_sync.sync_hubspot__<object_type>` to HubSpot; see the module doc.

    Raises `SyncModelInvalid` (null/duplicate keys), `GuardRefused` (unless `confirm`),
    `CredentialsRejected`, `PropertySetupError`; otherwise returns a `PushResult` whatever the
    CRM answered (check `.status` / `.ok`).
    """
    settings = settings or Settings.from_env()
    spec = spec_for(object_type)
    if spec.object_type == "timeline_notes":
        from reverse_etl.notes import NotesRun

        run: _Run = NotesRun(spec, settings, confirm=confirm, dry_run=dry_run, client=client)
    else:
        run = _Run(spec, settings, confirm=confirm, dry_run=dry_run, client=client)
    try:
        if dry_run:
            return run.preview()
        with state.PushLock(settings.warehouse, settings.lock_timeout_s):
            return run.execute()
    finally:
        run.db.close()


def dry_run(object_type: str, *, settings: Settings | None = None) -> PushResult:
    """The diff the next push would send (`result.changes`, `result.diff_table()`); no HTTP call."""
    return push(object_type, settings=settings, dry_run=True)


def new_run_id(object_type: str) -> str:
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{object_type}-{uuid.uuid4().hex[:8]}"


@dataclass
class _Plan:
    diff: Diff
    guard: GuardReport
    dead_letter_ids: set[str]


class _Run:
    """One push or dry run: its plan, its batches and its counts."""

    def __init__(self, spec: ObjectSpec, settings: Settings, *, confirm: bool, dry_run: bool,
                 client: HubSpotClient | None):
        self.spec = spec
        self.settings = settings
        self.started = time.perf_counter()
        self.started_at = state.now()
        self.client = client
        self.result = PushResult(new_run_id(spec.object_type), spec.object_type,
                                 "dry_run" if dry_run else "push", confirmed_by_operator=confirm)
        self.accepted: set[str] = set()
        self.rejected: set[str] = set()
        self.db = state.Session(settings.warehouse, lock_timeout_s=settings.lock_timeout_s)

    # --- planning -------------------------------------------------------------------------

    def _plan(self, con: Any) -> _Plan:
        rows = read_sync_model(con, self.spec)
        confirmed = state.confirmed_values(con, self.spec.object_type)
        letters = state.dead_letters(con, self.spec.object_type)
        parked = {d.record_id for d in letters if d.status == "parked"}
        diff = compute(self.spec, rows, confirmed, parked)
        guard = evaluate(diff, first_push=not confirmed, loaded_at=latest_loads(con), settings=self.settings)
        r = self.result
        r.total, r.changed, r.unchanged, r.parked = diff.total, len(diff.changes), diff.unchanged, len(diff.parked)
        r.first_push, r.guard_refusals, r.changes = guard.first_push, guard.refusals, diff.changes
        return _Plan(diff, guard, {d.record_id for d in letters})

    def preview(self) -> PushResult:
        with self.db.connect() as con:
            self._plan(con)
            self.result.status = "dry_run"
            self.result.pending = self.result.changed
            self.result.message = "dry run: nothing was sent"
            self._finish(con)
        return self.result

    # --- pushing --------------------------------------------------------------------------

    def execute(self) -> PushResult:
        r = self.result
        with self.db.connect() as con:
            interrupted = state.close_interrupted(con)
            if interrupted:
                logger.warning("%s: %d audit rows of an interrupted push marked interrupted; their batches "
                               "are sent again", self.spec.object_type, interrupted)
            plan = self._plan(con)
            if plan.guard.refusals and not r.confirmed_by_operator:
                r.status, r.message = "refused", "; ".join(plan.guard.refusals)
                self._finish(con)
                raise GuardRefused(plan.guard.refusals, r)
            settled = plan.dead_letter_ids - plan.diff.changed_ids - set(plan.diff.parked)
            with state.transaction(con):
                state.resolve_dead_letters(con, self.spec.object_type, settled)
                state.record_run(con, self._run_row())
        logger.info("%s: %d of %d records changed (%d unchanged, %d parked)%s", self.spec.object_type,
                    r.changed, r.total, r.unchanged, r.parked, " — first push" if r.first_push else "")
        if plan.diff.changes:
            self._send_all(plan.diff.changes)
        else:
            r.status = "success" if not r.parked else "partial"
        with self.db.connect() as con:
            self._finish(con)
        return r

    def _send_all(self, changes: list[RecordChange]) -> None:
        r = self.result
        self.client = self.client or HubSpotClient(self.settings)
        try:
            ensure_properties(self.client, self.spec)
            changes = self._before_sending(changes)
            size = self.settings.batch_size
            for start in range(0, len(changes), size):
                self._send(changes[start:start + size])
                _crash_point("batch", r.batches)
            r.status = "success"
        except DailyLimitReached as exc:
            r.status, r.message = "stopped", str(exc)
            logger.warning("%s: %s", self.spec.object_type, exc)
        except CrmUnavailable as exc:
            r.status, r.message = "failed", str(exc)
            logger.error("%s: %s", self.spec.object_type, exc)
        except BaseException as exc:
            r.status, r.message = "failed", f"{type(exc).__name__}: {exc}"
            self._count()
            with self.db.connect() as con:
                self._finish(con)
            raise
        self._count()

    def _before_sending(self, changes: list[RecordChange]) -> list[RecordChange]:
        """The changes still to send once the properties exist (a subclass may settle some first)."""
        return changes

    def _send(self, records: list[RecordChange]) -> None:
        """One batch update and its recorded answer; a whole-batch 4xx is split and retried."""
        object_type = self.spec.object_type
        batch_id = uuid.uuid4().hex
        with self.db.connect() as con:
            state.log_sending(con, run_id=self.result.run_id, batch_id=batch_id, object_type=object_type,
                              rows=[(c.record_id, p, old, new) for c in records
                                    for p, (old, new) in c.properties.items()])
        self.result.batches += 1
        correlation: str | None = None
        split = False
        try:
            outcome = self.client.batch_update(object_type, [{"id": c.record_id, "properties": c.payload}
                                                             for c in records])
            _crash_point("send", self.result.batches)
            correlation = outcome.correlation_id
            outcomes = [self._outcome(c, outcome) for c in records]
        except DailyLimitReached as exc:
            self._record(batch_id, None, [RecordOutcome(c.record_id, c.payload, "deferred", "DAILY_LIMIT", str(exc))
                                          for c in records])
            raise
        except (CrmUnavailable, CredentialsRejected) as exc:
            self._record(batch_id, None, [RecordOutcome(c.record_id, c.payload, "failed", type(exc).__name__,
                                                        str(exc)) for c in records])
            raise
        except BatchRejected as exc:
            if len(records) == 1:
                outcomes = [RecordOutcome(records[0].record_id, records[0].payload, "rejected", exc.category,
                                          exc.message)]
            else:
                outcomes = [RecordOutcome(c.record_id, c.payload, "batch_rejected", exc.category, exc.message)
                            for c in records]
                split = True
        self._record(batch_id, correlation, outcomes)
        if split:
            middle = len(records) // 2
            self._send(records[:middle])
            self._send(records[middle:])

    @staticmethod
    def _outcome(change: RecordChange, outcome: Any) -> RecordOutcome:
        if change.record_id in outcome.accepted:
            return RecordOutcome(change.record_id, change.payload, "accepted")
        if change.record_id in outcome.rejected:
            category, message = outcome.rejected[change.record_id]
            return RecordOutcome(change.record_id, change.payload, "rejected", category, message)
        return RecordOutcome(change.record_id, change.payload, "unconfirmed", "UNCONFIRMED",
                             "HubSpot's answer did not mention this record")

    def _record(self, batch_id: str, correlation: str | None, outcomes: list[RecordOutcome]) -> None:
        with self.db.connect() as con:
            state.record_outcomes(con, run_id=self.result.run_id, batch_id=batch_id,
                                  object_type=self.spec.object_type, correlation_id=correlation,
                                  outcomes=outcomes, max_attempts=self.settings.dead_letter_max_attempts)
        self.accepted.update(o.record_id for o in outcomes if o.status == "accepted")
        self.rejected.update(o.record_id for o in outcomes if o.status == "rejected")

    # --- counts ---------------------------------------------------------------------------

    def _count(self) -> None:
        r = self.result
        r.sent, r.rejected = len(self.accepted), len(self.rejected)
        if self.client is not None:
            stats = self.client.stats
            r.write_calls, r.requests, r.rate_limited = stats.write_calls, stats.requests, stats.rate_limited

    def _finish(self, con: Any) -> None:
        """Final counts (newly parked records read back from the dead letters) and the runs row."""
        r = self.result
        if r.status == "refused":
            r.pending = r.changed
        elif r.mode == "push":
            (newly_parked,) = con.execute(
                f"SELECT count(*) FROM {state.SCHEMA}.dead_letters WHERE object_type = ? AND status = 'parked' "
                f"AND last_run_id = ?", [r.object_type, r.run_id]).fetchone()
            r.parked += newly_parked
            r.pending = r.changed - r.sent - newly_parked
            if r.status == "success" and (r.pending or r.parked):
                r.status = "partial"
        r.seconds = time.perf_counter() - self.started
        state.record_run(con, {**self._run_row(), "finished_at": state.now()})
        logger.info("%s: %s — sent %d, unchanged %d, rejected %d, pending %d, parked %d; %d write calls, "
                    "%d requests, %.1f s", r.object_type, r.status, r.sent, r.unchanged, r.rejected, r.pending,
                    r.parked, r.write_calls, r.requests, r.seconds)

    def _run_row(self) -> dict[str, Any]:
        r = self.result
        return {"run_id": r.run_id, "object_type": r.object_type, "mode": r.mode, "started_at": self.started_at,
                "finished_at": None, "status": r.status, "confirmed_by_operator": r.confirmed_by_operator,
                "first_push": r.first_push, "total_records": r.total, "changed": r.changed, "sent": r.sent,
                "unchanged": r.unchanged, "rejected": r.rejected, "pending": r.pending, "parked": r.parked,
                "write_calls": r.write_calls, "requests": r.requests, "rate_limited": r.rate_limited,
                "message": r.message}


def _crash_point(step: str, batch: int) -> None:
    """Die the hard way at `step` of batch `batch` when `CONCORD_CRASH_AFTER=<step>:<batch>` asks."""
    if os.environ.get(CRASH_ENV) == f"{step}:{batch}":
        os.kill(os.getpid(), signal.SIGKILL)
