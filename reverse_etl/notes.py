"""Business events as notes on the client's HubSpot company timeline, each exactly once.

    result = push("timeline_notes")     # the same PushResult, counts and guards as companies

`crm_sync.sync_hubspot__timeline_events` lists the events (`invoice_issued`, `payment_received`,
`dispute_opened`, `invoice_overdue`) keyed by `event_key`; each becomes one note associated with
`hubspot_company_id`, stamped with its key in the note property `concord_event_key`.

HubSpot has no idempotency key for creates, so "exactly once" rests on the ledger
(`reverse_etl.timeline_notes`) and on asking HubSpot before ever sending a create twice:
- a batch's events are written `sending` before the request goes out, and `created` with their
  note ids in the transaction that records HubSpot's answer;
- a create whose outcome is unknown (a 5xx, a timeout, or a push killed between the request and
  the record of its answer) is never resent blind. Once `note_settle_s` has passed since the
  attempt, the notes carrying its keys are looked up (search on `concord_event_key`); those found
  are adopted, only the others are sent — in the same run after a 5xx or timeout, in the next run
  after a crash;
- with an empty ledger (a first push, or a warehouse whose `reverse_etl` schema was dropped)
  every key is looked up before anything is created, so a lost ledger does not post every note
  again;
- a batch HubSpot refuses (400: an archived company, a bad value) is split until the bad events
  stand alone; they become dead letters, retried and parked like records.
Only a note HubSpot answers for later than `note_settle_s` after the client gave up on it could
be created twice; raise the setting if the CRM is that slow.

The freshness guard applies (an overdue note from stale billing data may be wrong); the
change-share guard does not (every note is new).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import duckdb

from reverse_etl import state
from reverse_etl.contract import ObjectSpec, to_property_value
from reverse_etl.diff import Diff, RecordChange
from reverse_etl.errors import (
    CredentialsRejected,
    CrmUnavailable,
    DailyLimitReached,
    OutcomeUnknown,
    SyncModelInvalid,
)
from reverse_etl.guards import evaluate, latest_loads
from reverse_etl.push import _crash_point, _Plan, _Run
from reverse_etl.state import RecordOutcome

logger = logging.getLogger("concord.reverse_etl")

KEY_PROPERTY = "concord_event_key"
NOTE_TO_COMPANY = 190  # HubSpot's association type id, note -> company
LOOKUP_CHUNK = 100


@dataclass(frozen=True)
class Event:
    key: str
    company_id: str
    body: str
    timestamp: str

    def change(self) -> RecordChange:
        return RecordChange(self.key, {"hs_note_body": (None, self.body)}, new=True)

    def create_input(self) -> dict[str, Any]:
        return {"properties": {"hs_note_body": self.body, "hs_timestamp": self.timestamp, KEY_PROPERTY: self.key},
                "associations": [{"to": {"id": self.company_id},
                                  "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                             "associationTypeId": NOTE_TO_COMPANY}]}]}


def read_events(con: duckdb.DuckDBPyConnection, spec: ObjectSpec) -> dict[str, Event]:
    """event key -> Event; a null or duplicate key, or an event without a company, fails here."""
    try:
        rows = con.execute(f"SELECT event_key, hubspot_company_id, note_body, occurred_at FROM {spec.relation}"
                           ).fetchall()
    except duckdb.CatalogException as exc:
        raise SyncModelInvalid(f"{spec.relation} is not in the warehouse; build the crm_sync models first "
                               f"(dbt build --select {spec.model}): {exc}") from None
    events: dict[str, Event] = {}
    nulls = duplicates = 0
    for key, company, body, occurred_at in rows:
        if not key or not company or not body or occurred_at is None:
            nulls += 1
        elif key in events:
            duplicates += 1
        else:
            events[key] = Event(key, str(company), body, to_property_value(occurred_at))
    if nulls or duplicates:
        raise SyncModelInvalid(f"{spec.relation}: {nulls} rows without an event key, company, note or time, "
                               f"{duplicates} duplicated keys. Nothing was sent.")
    return events


class NotesRun(_Run):
    """A push of timeline notes: `_Run`'s order of work, creates instead of updates."""

    def _plan(self, con: Any) -> _Plan:
        self.events = read_events(con, self.spec)
        ledger = state.note_ledger(con)
        letters = state.dead_letters(con, self.spec.object_type)
        parked = {d.record_id for d in letters if d.status == "parked"}
        created = {key for key, (status, _) in ledger.items() if status == "created"}
        due = [e for key, e in sorted(self.events.items()) if key not in created]
        held = [e.key for e in due if e.key in parked]
        changes = [e.change() for e in due if e.key not in parked]
        diff = Diff(changes=changes, unchanged=len(self.events) - len(due), parked=held, total=len(self.events))
        in_doubt = {key: at for key, (status, at) in ledger.items() if status == "sending"}
        self.lookup_all = not ledger
        self.in_doubt = in_doubt
        guard = evaluate(diff, first_push=not ledger, loaded_at=latest_loads(con), settings=self.settings)
        r = self.result
        r.total, r.changed, r.unchanged, r.parked = diff.total, len(changes), diff.unchanged, len(held)
        r.first_push, r.guard_refusals, r.changes = guard.first_push, guard.refusals, changes
        return _Plan(diff, guard, {d.record_id for d in letters})

    def _before_sending(self, changes: list[RecordChange]) -> list[RecordChange]:
        """Adopt the notes HubSpot already holds for keys in doubt (or for every key, with no ledger)."""
        keys = [c.record_id for c in changes if self.lookup_all or c.record_id in self.in_doubt]
        if not keys:
            return changes
        if not self.lookup_all:
            newest = max(self.in_doubt[k] for k in keys)
            self._settle(time.time() - newest.timestamp())
        found = self._adopt(keys)
        return [c for c in changes if c.record_id not in found]

    def _settle(self, elapsed_s: float) -> None:
        wait = self.settings.note_settle_s - elapsed_s
        if wait > 0:
            self.client.wait(wait, "notes in doubt from an earlier push; settling before looking them up")

    def _adopt(self, keys: list[str]) -> set[str]:
        """Look `keys` up in HubSpot; record the notes found as created. Returns the keys found."""
        found = self._lookup(keys)
        if found:
            with self.db.connect() as con:
                with state.transaction(con):
                    state.record_notes(con, run_id=self.result.run_id, batch_id=f"lookup-{uuid.uuid4().hex}",
                                       created={k: (note, self.events[k].company_id) for k, note in found.items()})
                    state.resolve_dead_letters(con, self.spec.object_type, found)
            self.accepted.update(found)
            logger.info("timeline notes: %d of %d looked-up events already had their note in HubSpot",
                        len(found), len(keys))
        return set(found)

    def _lookup(self, keys: list[str]) -> dict[str, str]:
        """event key -> id of the (oldest) HubSpot note carrying it, for the keys that have one."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), LOOKUP_CHUNK):
            body: dict[str, Any] = {
                "filterGroups": [{"filters": [{"propertyName": KEY_PROPERTY, "operator": "IN",
                                               "values": keys[start:start + LOOKUP_CHUNK]}]}],
                "properties": [KEY_PROPERTY], "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "limit": 100}
            while True:
                status, page = self.client.send_json("POST", "/crm/v3/objects/notes/search", body)
                if status != 200:
                    raise CrmUnavailable(f"looking notes up by {KEY_PROPERTY} failed (HTTP {status}): {page}")
                for note in page.get("results", []):
                    key = (note.get("properties") or {}).get(KEY_PROPERTY)
                    if key in self.events:
                        found.setdefault(key, str(note["id"]))
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
                body["after"] = after
        return found

    def _send(self, records: list[RecordChange], attempt: int = 0) -> None:
        """One batch create and its recorded answer; see the module doc for what happens on failure."""
        events = [self.events[c.record_id] for c in records]
        batch_id = uuid.uuid4().hex
        with self.db.connect() as con:
            with state.transaction(con):
                state.log_note_sending(con, run_id=self.result.run_id, batch_id=batch_id,
                                       notes=[(e.key, e.company_id) for e in events])
                state.log_sending(con, run_id=self.result.run_id, batch_id=batch_id, object_type="timeline_notes",
                                  rows=[(e.key, "hs_note_body", None, e.body) for e in events])
        self.result.batches += 1
        try:
            response = self.client.request("POST", "/crm/v3/objects/notes/batch/create", write=True,
                                           idempotent=False, json={"inputs": [e.create_input() for e in events]})
        except OutcomeUnknown as exc:
            self._record(batch_id, None, events, {}, status="unknown", error=str(exc))
            if attempt >= self.settings.max_retries:
                raise
            self.client.wait(max(self.settings.note_settle_s, self.client.backoff(attempt)),
                             "a note create of unknown outcome; settling before looking its notes up")
            found = self._adopt([e.key for e in events])
            rest = [c for c in records if c.record_id not in found]
            if rest:
                self._send(rest, attempt + 1)
            return
        except (DailyLimitReached, CredentialsRejected) as exc:
            self._record(batch_id, None, events, {}, status="deferred", error=str(exc), not_created=True)
            raise
        _crash_point("send", self.result.batches)
        body = response.json() if response.content else {}
        correlation = response.headers.get("X-HubSpot-Correlation-Id")
        if response.status_code >= 400:
            message = str(body.get("message") if isinstance(body, dict) else body)[:1000]
            category = str(body.get("category", "UNKNOWN")) if isinstance(body, dict) else "UNKNOWN"
            if len(records) == 1:
                self._record(batch_id, correlation, events, {}, status="rejected", error=message, category=category,
                             not_created=True)
                return
            self._record(batch_id, correlation, events, {}, status="batch_rejected", error=message,
                         category=category, not_created=True)
            middle = len(records) // 2
            self._send(records[:middle])
            self._send(records[middle:])
            return
        created = {}
        for note in body.get("results", []):
            key = (note.get("properties") or {}).get(KEY_PROPERTY)
            if key in self.events:
                created[key] = str(note["id"])
        self._record(batch_id, correlation, events, created, status="unconfirmed",
                     error="HubSpot's answer did not mention this note; it is looked up before any resend")

    def _record(self, batch_id: str, correlation: str | None, events: list[Event], created: dict[str, str], *,
                status: str, error: str, category: str | None = None, not_created: bool = False) -> None:
        """One transaction: audit answered, ledger updated, rejected events dead-lettered.

        `created` events are accepted; the others take `status`. With `not_created`, HubSpot
        certainly did not create them, so they leave the ledger (pending again); otherwise they
        stay `sending`: in doubt until looked up.
        """
        outcomes = [RecordOutcome(e.key, {"hs_note_body": e.body}, "accepted") if e.key in created else
                    RecordOutcome(e.key, {"hs_note_body": e.body}, status, category or status.upper(), error)
                    for e in events]
        with self.db.connect() as con:
            with state.transaction(con):
                state.answer_audit(con, batch_id=batch_id, correlation_id=correlation, outcomes=outcomes,
                                   at=state.now())
                state.record_notes(con, run_id=self.result.run_id, batch_id=batch_id,
                                   created={k: (note, self.events[k].company_id) for k, note in created.items()},
                                   not_created=[e.key for e in events if e.key not in created] if not_created else ())
                state.resolve_dead_letters(con, self.spec.object_type, created)
                state.dead_letter(con, object_type=self.spec.object_type, run_id=self.result.run_id,
                                  outcomes=outcomes, max_attempts=self.settings.dead_letter_max_attempts,
                                  at=state.now())
        self.accepted.update(created)
        self.rejected.update(o.record_id for o in outcomes if o.status == "rejected")
