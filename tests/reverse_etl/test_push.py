"""Reverse ETL of companies and deals against the sandbox HubSpot (real HTTP, real DuckDB).

Each test gets its own copy of one built small firm and a CRM nothing has written to yet:
- a push makes every company and deal equal the sync model, and the stale-CRM exception empty;
- a second push writes nothing; one changed value is one record in one batch call;
- the dry run's diff is what the next push sends, and it makes no request at all;
- 207 rejections are dead-lettered, resent, parked at the retry limit and requeued;
- the client's budget holds in every rolling window; 429 storms and 5xx are waited out;
- the daily limit stops a push cleanly; a killed push resumes without resending what was confirmed;
- bad keys fail before any HTTP call; the guards refuse until confirmed; no secret is stored.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import signal

import duckdb
import pytest

from ingestion.warehouse import SYNCS_TABLE
from reverse_etl import ensure_properties, list_dead_letters, push, requeue
from reverse_etl.client import HubSpotClient
from reverse_etl.contract import COMPANIES, DEALS, OBJECTS
from reverse_etl.errors import CredentialsRejected, GuardRefused, PropertySetupError, SyncModelInvalid
from tests.reverse_etl.conftest import Firm

COMPANY_TYPES = {"ar_balance": "number", "last_invoice_date": "date", "financial_status": "enumeration",
                 "financial_status_synced_at": "datetime", "billing_currency": "string"}


def test_first_push_makes_the_crm_equal_the_model_and_nothing_stale(firm: Firm) -> None:
    firm.reset_requests()
    results = {t: push(t, settings=firm.settings()) for t in OBJECTS}
    for object_type, result in results.items():
        assert result.status == "success" and result.first_push, result
        assert result.sent == result.total == result.changed > 0
        assert (result.unchanged, result.rejected, result.pending, result.parked) == (0, 0, 0, 0)
        assert result.write_calls == firm.batch_update_calls(object_type) == math.ceil(result.total / 100)
        assert firm.crm_values(object_type) == firm.model_values(object_type)

    # land HubSpot again and rebuild: the CRM agrees with Concord everywhere
    firm.w.ingest()
    firm.w.build_models()
    assert firm.query("SELECT count(*) FROM reconciliation.reconciliation_exceptions "
                      "WHERE exception_type = 'crm_financial_status_stale'") == [(0,)]

    # nothing changed upstream (the rebuild moved no value, and synced_at alone is no change): no request at all
    firm.reset_requests()
    again = {t: push(t, settings=firm.settings()) for t in OBJECTS}
    assert firm.hubspot_requests() == {}
    assert all(r.status == "success" and r.sent == 0 and r.unchanged == r.total for r in again.values())

    # one account's balance drops to 0 and its last payment is undone: one record, one batch call
    company = sorted(firm.model_values("companies"))[3]
    firm.execute("UPDATE crm_sync.sync_hubspot__companies SET ar_balance = 0, last_payment_date = NULL, "
                 "financial_status_synced_at = financial_status_synced_at + INTERVAL 1 HOUR "
                 "WHERE hubspot_company_id = ?", company)
    firm.execute("UPDATE crm_sync.sync_hubspot__companies SET financial_status_synced_at = "
                 "financial_status_synced_at + INTERVAL 1 HOUR WHERE hubspot_company_id <> ?", company)
    firm.reset_requests()
    one = push("companies", settings=firm.settings())
    assert firm.hubspot_requests() == {"GET /crm/v3/properties/companies/groups/financial_status": 1,
                                       "GET /crm/v3/properties/companies": 1,
                                       "POST /crm/v3/objects/companies/batch/update": 1}
    assert (one.sent, one.write_calls, one.unchanged) == (1, 1, one.total - 1)
    sent = {prop: new for record, prop, _, new in firm.audit(one.run_id) if record == company}
    assert firm.audited_records(one.run_id) == {company}
    assert set(sent) >= {"ar_balance", "last_payment_date", "financial_status_synced_at"}
    assert sent["ar_balance"] in {"0.00", "0"} and sent["last_payment_date"] == ""
    crm = firm.crm_values("companies")
    assert crm[company]["last_payment_date"] is None and float(crm[company]["ar_balance"]) == 0
    assert crm[company] == firm.model_values("companies")[company], "synced_at moves with the changed record"
    assert firm.crm_values("companies", metadata=False) == firm.model_values("companies", metadata=False)


def test_property_setup_is_idempotent_and_typed(firm: Firm) -> None:
    client = HubSpotClient(firm.settings())
    report = ensure_properties(client, COMPANIES)
    assert report.group_created and report.created == list(COMPANIES.names)
    definitions = {p["name"]: p for p in client.get_json("/crm/v3/properties/companies")[1]["results"]}
    assert {n: definitions[n]["type"] for n in COMPANY_TYPES} == COMPANY_TYPES
    assert all(definitions[n]["groupName"] == "financial_status" for n in COMPANIES.names)
    assert [o["value"] for o in definitions["financial_status"]["options"]] == [
        "good_standing", "overdue", "in_dispute", "collections"]

    before = client.stats.requests
    again = ensure_properties(client, COMPANIES)
    assert (again.group_created, again.created, again.options_added) == (False, [], [])
    assert client.stats.requests - before == 2, "two reads, no write, when everything exists"

    # an enumeration missing an option gets it; a property of another type stops setup
    options = [o for o in definitions["financial_status"]["options"] if o["value"] != "collections"]
    assert client.send_json("PATCH", "/crm/v3/properties/companies/financial_status", {"options": options})[0] == 200
    assert ensure_properties(client, COMPANIES).options_added == ["financial_status"]
    created = client.send_json("POST", "/crm/v3/properties/deals/groups", {"name": "financial_status", "label": "x"})
    assert created[0] == 201
    wrong = {"name": "scope_mismatch", "label": "Scope", "type": "string", "fieldType": "text",
             "groupName": "financial_status"}
    assert client.send_json("POST", "/crm/v3/properties/deals", wrong)[0] == 201
    with pytest.raises(PropertySetupError, match="scope_mismatch"):
        ensure_properties(client, DEALS)
    with pytest.raises(PropertySetupError):
        push("deals", settings=firm.settings())


def test_dry_run_diff_is_what_the_next_push_sends(firm: Firm) -> None:
    firm.reset_requests()
    preview = push("companies", settings=firm.settings(), dry_run=True)
    assert firm.hubspot_requests() == {}, "a dry run makes no request at all"
    assert preview.status == "dry_run" and preview.pending == preview.total
    first = push("companies", settings=firm.settings())
    assert firm.audit(first.run_id) == set(preview.diff_table())

    # a few values move (one to 0, one cleared), then preview and push again
    ids = sorted(firm.model_values("companies"))
    firm.execute("UPDATE crm_sync.sync_hubspot__companies SET ar_balance = ar_balance + 12.34 "
                 "WHERE hubspot_company_id IN (?, ?, ?)", *ids[:3])
    firm.execute("UPDATE crm_sync.sync_hubspot__companies SET lifetime_billed = 0, last_invoice_date = NULL "
                 "WHERE hubspot_company_id = ?", ids[5])
    firm.reset_requests()
    preview = push("companies", settings=firm.settings(), dry_run=True)
    assert firm.hubspot_requests() == {}
    assert {c.record_id for c in preview.changes} == {*ids[:3], ids[5]}
    old_balance = dict(firm.query("SELECT record_id, value FROM reverse_etl.confirmed_values "
                                  "WHERE property = 'ar_balance'"))
    assert all(old == old_balance[record] for record, prop, old, _ in preview.diff_table() if prop == "ar_balance")
    pushed = push("companies", settings=firm.settings())
    assert firm.audit(pushed.run_id) == set(preview.diff_table())
    assert pushed.sent == 4 and firm.batch_update_calls("companies") == 1
    assert firm.crm_values("companies") == firm.model_values("companies")


def test_rejected_records_are_dead_lettered_resent_parked_and_requeued(firm: Firm) -> None:
    settings = firm.settings(dead_letter_max_attempts=3)
    firm.sandbox_settings(faults={"reject_rate": 0.2, "seed": 4})
    first = push("companies", settings=settings)
    rejected = firm.audited_records(first.run_id, "rejected")
    assert 0 < len(rejected) < first.total and first.rejected == len(rejected)
    assert (first.status, first.sent, first.pending) == ("partial", first.total - len(rejected), len(rejected))
    letters = {d.record_id: d for d in list_dead_letters(settings)}
    assert set(letters) == rejected
    assert all(d.status == "pending" and d.attempts == 1 and d.error_category == "VALIDATION_ERROR"
               and d.error_message and d.payload for d in letters.values())
    crm, model = firm.crm_values("companies"), firm.model_values("companies")
    assert all(crm[i] == model[i] for i in model if i not in rejected), "the rest are confirmed and written"
    assert all(crm[i] != model[i] for i in rejected)

    # still rejected on the next run: resent, attempts 2
    firm.reset_requests()
    second = push("companies", settings=settings)
    assert firm.audited_records(second.run_id) == rejected and second.rejected == len(rejected)
    assert {d.attempts for d in list_dead_letters(settings)} == {2}

    # the third rejection parks them; a parked record is held back, not sent
    third = push("companies", settings=settings)
    assert third.parked == len(rejected) and third.pending == 0 and third.status == "partial"
    assert {d.status for d in list_dead_letters(settings)} == {"parked"}
    firm.reset_requests()
    held = push("companies", settings=settings)
    assert firm.batch_update_calls("companies") == 0 and held.parked == len(rejected)

    # the operator fixes the cause and requeues (CLI): they are sent and accepted, then left alone
    firm.sandbox_settings(faults={"reject_rate": 0.0})
    listed = firm.cli("dead-letters", "--status", "parked")
    assert listed.returncode == 0 and f"{len(rejected)} dead letters" in listed.stdout
    assert all(record in listed.stdout for record in rejected)
    requeued = firm.cli("requeue", "--object", "companies")
    assert requeued.returncode == 0 and f"{len(rejected)} parked dead letters requeued" in requeued.stdout
    firm.reset_requests()
    fixed = push("companies", settings=settings)
    assert fixed.status == "success" and fixed.sent == len(rejected)
    assert firm.audited_records(fixed.run_id) == rejected and firm.batch_update_calls("companies") == 1
    assert list_dead_letters(settings) == []
    assert firm.crm_values("companies") == firm.model_values("companies")
    firm.reset_requests()
    assert push("companies", settings=settings).sent == 0 and firm.hubspot_requests() == {}
    assert requeue(settings) == 0


def test_rejected_records_are_accepted_on_the_next_run_once_the_cause_is_gone(firm: Firm) -> None:
    firm.sandbox_settings(faults={"reject_rate": 0.3, "seed": 11})
    first = push("deals", settings=firm.settings())
    rejected = firm.audited_records(first.run_id, "rejected")
    assert rejected and first.pending == len(rejected)
    firm.sandbox_settings(faults={"reject_rate": 0.0})
    firm.reset_requests()
    second = push("deals", settings=firm.settings())
    assert firm.audited_records(second.run_id) == rejected and second.sent == len(rejected)
    assert firm.batch_update_calls("deals") == 1 and list_dead_letters(firm.settings()) == []
    firm.reset_requests()
    assert push("deals", settings=firm.settings()).sent == 0 and firm.batch_update_calls("deals") == 0
    assert firm.crm_values("deals") == firm.model_values("deals")


def test_the_rate_budget_holds_in_every_window_and_429s_are_waited_out(firm: Firm) -> None:
    firm.sandbox_settings(rate_limits=True)
    budget, window = 8, 1.0
    settings = firm.settings(rate_limit=budget, rate_window_s=window, batch_size=5)
    firm.reset_requests()
    result = push("companies", settings=settings)
    assert result.status == "success" and result.write_calls == math.ceil(result.total / 5)
    times = sorted(e["t"] for e in firm.request_log() if e["system"] == "hubspot")
    assert len(times) == result.requests > 2 * budget
    busiest = max(sum(1 for t in times if start <= t < start + window) for start in times)
    assert busiest == budget, "the budget is used, never exceeded, in any rolling window"

    # 429 storms (Retry-After: 0) and 5xx: the same batch waits and goes again until accepted
    firm.sandbox_settings(faults={"storm_rate": 0.3, "storm_length": 2, "retry_after": 0, "error_rate": 0.1,
                                  "seed": 5})
    storm = push("deals", settings=firm.settings(batch_size=20))
    assert storm.status == "success" and storm.rate_limited > 0 and storm.sent == storm.total
    assert storm.write_calls > math.ceil(storm.total / 20), "some batches were sent more than once"
    firm.sandbox_settings(faults={"storm_rate": 0.0, "error_rate": 0.0})
    accepted = firm.query("SELECT record_id, count(*) FROM reverse_etl.audit_log WHERE run_id = ? "
                          "AND status = 'accepted' GROUP BY ALL HAVING count(*) <> 4", storm.run_id)
    assert accepted == [], "every record accepted once, with its four properties"
    assert firm.crm_values("deals") == firm.model_values("deals")


def test_the_daily_limit_stops_cleanly_and_leaves_the_rest_pending(firm: Firm) -> None:
    settings = firm.settings(batch_size=10)
    ensure_properties(HubSpotClient(settings), COMPANIES)
    firm.sandbox_settings(hubspot_daily_limit=4)  # two property reads, two batches
    stopped = push("companies", settings=settings)
    assert stopped.status == "stopped" and "daily limit" in stopped.message
    assert (stopped.sent, stopped.pending) == (20, stopped.total - 20)
    assert len(firm.audited_records(stopped.run_id, "deferred")) == 10
    (confirmed,) = firm.query("SELECT count(DISTINCT record_id) FROM reverse_etl.confirmed_values")[0]
    assert confirmed == 20

    firm.sandbox_settings(hubspot_daily_limit=0)
    resumed = push("companies", settings=settings)
    assert resumed.status == "success" and resumed.sent == stopped.total - 20
    assert not firm.audited_records(resumed.run_id) & firm.audited_records(stopped.run_id, "accepted")
    assert firm.crm_values("companies") == firm.model_values("companies")


def test_a_killed_push_resumes_without_resending_confirmed_batches(firm: Firm) -> None:
    # killed after HubSpot answered batch 3, before its answer was recorded
    killed = firm.cli("push", "--object", "companies", env={**firm.env(batch_size=10), "CONCORD_CRASH_AFTER": "send:3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (crashed_run,) = firm.query("SELECT run_id FROM reverse_etl.runs WHERE mode = 'push'")[0]
    confirmed = firm.audited_records(crashed_run, "accepted")
    in_flight = firm.audited_records(crashed_run, "sending")
    assert (len(confirmed), len(in_flight)) == (20, 10)

    firm.reset_requests()
    resumed = push("companies", settings=firm.settings(batch_size=10))
    assert resumed.status == "success"
    resent = firm.audited_records(resumed.run_id)
    assert not resent & confirmed, "no confirmed batch is sent again"
    assert in_flight <= resent, "the unanswered batch is sent again (absolute values: harmless)"
    assert resent | confirmed == set(firm.model_values("companies"))
    assert firm.batch_update_calls("companies") == math.ceil(len(resent) / 10)
    assert firm.query("SELECT DISTINCT status FROM reverse_etl.audit_log WHERE run_id = ? AND record_id IN "
                      "(SELECT unnest(?))", crashed_run, sorted(in_flight)) == [("interrupted",)]
    assert firm.query("SELECT status FROM reverse_etl.runs WHERE run_id = ?", crashed_run) == [("interrupted",)]
    assert firm.crm_values("companies") == firm.model_values("companies"), "no account older than its source"

    # killed right after batch 2 was recorded: the next push starts at batch 3
    killed = firm.cli("push", "--object", "deals", env={**firm.env(batch_size=50), "CONCORD_CRASH_AFTER": "batch:2"})
    assert killed.returncode == -signal.SIGKILL
    resumed = push("deals", settings=firm.settings(batch_size=50))
    total = resumed.total
    assert resumed.sent == total - 100 and resumed.write_calls == math.ceil((total - 100) / 50)
    assert firm.crm_values("deals") == firm.model_values("deals")


@pytest.mark.parametrize("corruption", ["duplicate", "null"])
def test_bad_keys_fail_before_any_http_call(firm: Firm, corruption: str) -> None:
    relation = COMPANIES.relation
    key = "hubspot_company_id" if corruption == "duplicate" else "NULL"
    firm.execute(f"CREATE OR REPLACE TABLE {relation} AS SELECT * FROM {relation} UNION ALL "
                 f"(SELECT * REPLACE ({key} AS hubspot_company_id) FROM {relation} LIMIT 1)")
    firm.reset_requests()
    for dry in (True, False):
        with pytest.raises(SyncModelInvalid, match="duplicated keys" if corruption == "duplicate" else "1 rows"):
            push("companies", settings=firm.settings(), dry_run=dry)
    assert firm.hubspot_requests() == {}
    failed = firm.cli("push", "--object", "companies")
    assert failed.returncode == 1 and "FAILED" in failed.stderr
    assert firm.hubspot_requests() == {}


def test_guards_refuse_until_an_operator_confirms(firm: Firm) -> None:
    # stale billing data refuses even a first push; confirm proceeds
    stale = firm.settings(billing_max_age_hours=0)
    firm.reset_requests()
    with pytest.raises(GuardRefused, match="billing data last synced") as refused:
        push("companies", settings=stale)
    assert refused.value.result.status == "refused" and firm.hubspot_requests() == {}
    first = push("companies", settings=stale, confirm=True)
    assert first.status == "success" and first.confirmed_by_operator and first.first_push

    # most records changing (a model bug would look like this): refused, then --confirm
    firm.execute("UPDATE crm_sync.sync_hubspot__companies SET lifetime_billed = lifetime_billed + 1")
    firm.reset_requests()
    with pytest.raises(GuardRefused, match="would change"):
        push("companies", settings=firm.settings())
    cli = firm.cli("push", "--object", "companies")
    assert cli.returncode == 2 and "REFUSED" in cli.stderr and "--confirm" in cli.stderr
    assert firm.hubspot_requests() == {}
    assert firm.query("SELECT count(*) FROM reverse_etl.runs WHERE status = 'refused'") == [(3,)]
    confirmed = firm.cli("push", "--object", "companies", "--confirm")
    assert confirmed.returncode == 0, confirmed.stderr
    assert f"sent {first.total}," in confirmed.stdout
    assert firm.crm_values("companies") == firm.model_values("companies")

    # a small share passes without asking
    firm.execute("UPDATE crm_sync.sync_hubspot__companies SET lifetime_billed = lifetime_billed + 1 "
                 "WHERE hubspot_company_id IN (SELECT hubspot_company_id FROM crm_sync.sync_hubspot__companies "
                 "ORDER BY 1 LIMIT 3)")
    assert push("companies", settings=firm.settings()).sent == 3


def test_a_quiet_billing_source_that_was_synced_counts_as_fresh(firm: Firm) -> None:
    """dlt writes no load when Stripe had nothing new; the sync is recorded and the guard counts it."""
    firm.execute("UPDATE raw_stripe._dlt_loads SET inserted_at = inserted_at - INTERVAL 30 HOUR")
    firm.execute(f"UPDATE {SYNCS_TABLE} SET synced_at = synced_at - INTERVAL 30 HOUR")
    with pytest.raises(GuardRefused, match=r"billing data last synced 3\d\.\d h ago"):
        push("companies", settings=firm.settings())

    firm.w.ingest()  # the sandbox's clock has not moved: Stripe has nothing new
    (newest_load,) = firm.query("SELECT max(inserted_at) FROM raw_stripe._dlt_loads")[0]
    assert newest_load < dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=29), "Stripe loaded something"
    result = push("companies", settings=firm.settings())
    assert result.status == "success" and not result.confirmed_by_operator and not result.guard_refusals


def test_secrets_never_reach_the_audit_log_or_the_warehouse(firm: Firm) -> None:
    settings = firm.settings()
    wrong = settings.with_(access_token="pat-na1-00000000-wrong-token-0000")
    with pytest.raises(CredentialsRejected, match="SOURCES__HUBSPOT__ACCESS_TOKEN"):
        push("companies", settings=wrong)
    assert wrong.access_token not in repr(wrong) and settings.access_token not in repr(settings)
    firm.sandbox_settings(faults={"reject_rate": 0.2})
    push("companies", settings=settings)
    push("deals", settings=settings)
    assert firm.query("SELECT count(*) FROM reverse_etl.runs WHERE status = 'failed'") == [(1,)]
    assert firm.query("SELECT count(*) FROM reverse_etl.dead_letters") != [(0,)]

    columns = firm.query("SELECT c.table_schema, c.table_name, list(c.column_name) FROM information_schema.columns c "
                         "JOIN information_schema.tables t USING (table_schema, table_name) "
                         "WHERE t.table_type = 'BASE TABLE' AND c.data_type IN ('VARCHAR', 'JSON') GROUP BY ALL")
    assert any(schema == "reverse_etl" for schema, _, _ in columns)
    tokens = [settings.access_token, wrong.access_token]
    with duckdb.connect(str(firm.w.path), read_only=True) as con:
        for schema, table, names in columns:
            found = " OR ".join(f'contains(CAST("{n}" AS VARCHAR), $token)' for n in names)
            for token in tokens:
                (hits,) = con.execute(f'SELECT count(*) FROM "{schema}"."{table}" WHERE {found}',
                                      {"token": token}).fetchone()
                assert hits == 0, f"the token is in {schema}.{table}"
    letters = json.dumps([d.payload for d in list_dead_letters(settings)])
    assert settings.access_token not in letters
