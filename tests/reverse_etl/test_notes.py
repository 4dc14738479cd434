"""Business events as HubSpot timeline notes, exactly once (real HTTP, real DuckDB).

- every event of the sync model becomes one note on its company; a re-run writes nothing;
- the dry run lists exactly the notes the next push creates;
- 5xx and timeouts on a create are never resent blind: the notes are looked up first;
- a push killed between HubSpot's answer and its record, or a lost ledger, posts nothing twice;
- a note HubSpot refuses (its company was archived) is dead-lettered, the rest are created.
"""

from __future__ import annotations

import math
import signal
from collections import Counter

import requests

from reverse_etl import list_dead_letters, push
from tests.reverse_etl.conftest import Firm


def model_events(firm: Firm) -> dict[str, str]:
    return dict(firm.query("SELECT event_key, hubspot_company_id FROM crm_sync.sync_hubspot__timeline_events"))


def assert_each_event_noted_once(firm: Firm, events: dict[str, str] | None = None) -> None:
    events = model_events(firm) if events is None else events
    notes = firm.crm_notes()
    keys = Counter(key for _, key, _ in notes)
    assert [k for k, n in keys.items() if n > 1] == [], "no event has two notes"
    assert {key: companies for _, key, companies in notes} == {k: {c} for k, c in events.items()}


def test_every_event_becomes_one_note_on_its_company_and_a_rerun_writes_nothing(firm: Firm) -> None:
    events = model_events(firm)
    types = {key.split(":")[0] for key in events}
    assert types == {"invoice_issued", "payment_received", "dispute_opened", "invoice_overdue"}, types
    firm.reset_requests()
    first = push("timeline_notes", settings=firm.settings())
    assert first.status == "success" and first.first_push
    assert first.sent == first.total == len(events) and first.write_calls == math.ceil(len(events) / 100)
    assert_each_event_noted_once(firm, events)
    assert firm.query("SELECT count(*), count(note_id) FROM reverse_etl.timeline_notes WHERE status = 'created'"
                      ) == [(len(events), len(events))]

    firm.reset_requests()
    again = push("timeline_notes", settings=firm.settings())
    assert firm.hubspot_requests() == {}
    assert (again.status, again.sent, again.unchanged) == ("success", 0, again.total)

    # a new event is one note, in one create; the others stay as they are
    firm.execute("INSERT INTO crm_sync.sync_hubspot__timeline_events SELECT * REPLACE "
                 "('payment_received:ch_new' AS event_key) FROM crm_sync.sync_hubspot__timeline_events LIMIT 1")
    firm.reset_requests()
    third = push("timeline_notes", settings=firm.settings())
    assert (third.sent, third.write_calls, third.unchanged) == (1, 1, len(events))
    assert firm.hubspot_requests().get("POST /crm/v3/objects/notes/search", 0) == 0
    assert_each_event_noted_once(firm)


def test_the_dry_run_lists_what_the_next_push_creates(firm: Firm) -> None:
    firm.reset_requests()
    preview = push("timeline_notes", settings=firm.settings(), dry_run=True)
    assert firm.hubspot_requests() == {} and preview.pending == preview.total > 0
    pushed = push("timeline_notes", settings=firm.settings())
    assert firm.audit(pushed.run_id) == set(preview.diff_table())


def test_failed_creates_are_looked_up_not_resent_blind(firm: Firm) -> None:
    # 5xx before HubSpot acts, and slow answers the client gives up on while HubSpot still creates the notes
    firm.sandbox_settings(faults={"error_rate": 0.25, "slow_rate": 0.25, "slow_ms": 1200, "seed": 3})
    settings = firm.settings(batch_size=10, timeout_s=0.4, note_settle_s=1.5, max_retries=8)
    result = push("timeline_notes", settings=settings)
    firm.sandbox_settings(faults={"error_rate": 0.0, "slow_rate": 0.0})
    unknown = firm.query("SELECT count(DISTINCT batch_id) FROM reverse_etl.audit_log WHERE run_id = ? "
                         "AND status = 'unknown'", result.run_id)[0][0]
    assert unknown > 0, "the faults hit some creates"
    assert result.status == "success" and result.sent == result.total
    assert_each_event_noted_once(firm)


def test_a_killed_push_or_a_lost_ledger_posts_nothing_twice(firm: Firm) -> None:
    # killed after HubSpot created batch 2's notes, before the answer was recorded
    killed = firm.cli("push", "--object", "timeline_notes",
                      env={**firm.env(batch_size=10), "CONCORD_CRASH_AFTER": "send:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert firm.query("SELECT status, count(*) FROM reverse_etl.timeline_notes GROUP BY ALL ORDER BY 1") == [
        ("created", 10), ("sending", 10)]
    firm.reset_requests()
    resumed = push("timeline_notes", settings=firm.settings(batch_size=10, note_settle_s=0))
    assert resumed.status == "success" and resumed.sent == resumed.total - 10
    assert firm.hubspot_requests()["POST /crm/v3/objects/notes/search"] == 1
    assert resumed.write_calls == math.ceil((resumed.total - 20) / 10), "batch 2 adopted, not sent again"
    assert_each_event_noted_once(firm)

    # the warehouse loses reverse ETL's state: every note is found in HubSpot, none posted again
    firm.execute("DROP SCHEMA reverse_etl CASCADE")
    firm.reset_requests()
    rebuilt = push("timeline_notes", settings=firm.settings())
    assert rebuilt.status == "success" and rebuilt.first_push and rebuilt.write_calls == 0
    assert firm.hubspot_requests().get("POST /crm/v3/objects/notes/batch/create", 0) == 0
    assert_each_event_noted_once(firm)


def test_a_note_hubspot_refuses_is_dead_lettered_and_the_rest_are_posted(firm: Firm) -> None:
    events = model_events(firm)
    company = Counter(events.values()).most_common(1)[0][0]
    base = firm.w.server.client_settings()
    archived = requests.delete(f"{base['SOURCES__HUBSPOT__BASE_URL']}/crm/v3/objects/companies/{company}",
                               headers={"Authorization": f"Bearer {base['SOURCES__HUBSPOT__ACCESS_TOKEN']}"},
                               timeout=10)
    assert archived.status_code == 204
    refused = {k for k, c in events.items() if c == company}
    result = push("timeline_notes", settings=firm.settings(batch_size=25))
    assert result.status == "partial" and result.rejected == len(refused)
    assert result.sent == len(events) - len(refused) and result.pending == len(refused)
    letters = list_dead_letters(firm.settings(), object_type="timeline_notes")
    assert {d.record_id for d in letters} == refused
    assert all(d.error_category == "VALIDATION_ERROR" or d.error_message for d in letters)
    assert_each_event_noted_once(firm, {k: c for k, c in events.items() if k not in refused})
