"""The reverse-ETL assets in Dagster, against the sandbox HubSpot, real DuckDB and a dbt-built warehouse.

Each test gets its own copy of one built small firm and materialises only the `crm/*` assets
and the sync models' key checks, in-process:
- a first materialisation sends every record and says so in typed metadata; a second sends none;
- HubSpot's rejections fail the `all_records_confirmed` check and the step, the counts recorded;
- a null or duplicated sync-model key fails the blocking check: no push, not one request;
- a guard refusal fails the step saying how to confirm; `confirm: true` pushes;
- timeline notes are posted once: a second materialisation creates none.
"""

from __future__ import annotations

import dagster as dg
import pytest

from orchestration.crm_assets import CONFIRMED_CHECK, CRM_OBJECTS, KEYS_CHECK
from orchestration.definitions import ASSET_CHECKS, ASSETS, RESOURCES, defs
from tests.reverse_etl.conftest import Firm, firm  # noqa: F401 - fixtures

SYNC_KEYS = {crm.object_type: crm.sync_key for crm in CRM_OBJECTS}
COUNTS = ("total", "changed", "sent", "unchanged", "rejected", "pending", "parked", "write_calls", "batches",
          "requests", "rate_limited")


@pytest.fixture
def crm(firm: Firm, monkeypatch: pytest.MonkeyPatch) -> Firm:  # noqa: F811
    """The firm copy, with the environment pointing Concord at its sandbox and warehouse."""
    for name, value in firm.w.env().items():
        monkeypatch.setenv(name, value)
    return firm


def run(*object_types: str, checks: bool = True, confirm: bool = False) -> dg.ExecuteInProcessResult:
    """Materialise `crm/<object_type>` (with its sync model's key check, unless `checks` is off)."""
    selection = dg.AssetSelection.assets(*(dg.AssetKey(["crm", t]) for t in object_types))
    if checks:
        selection |= dg.AssetSelection.checks(*(dg.AssetCheckKey(SYNC_KEYS[t], KEYS_CHECK) for t in object_types))
    run_config = {"ops": {f"crm__{t}": {"config": {"confirm": True}} for t in object_types}} if confirm else None
    return dg.materialize([*ASSETS, *ASSET_CHECKS], selection=selection, resources=RESOURCES,
                          raise_on_error=False, run_config=run_config)


def materialised(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, dg.MetadataValue]]:
    return {e.asset_key.path[-1]: e.materialization.metadata for e in result.get_asset_materialization_events()}


def checks_of(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(c.asset_key.path[-1], c.check_name): c for c in result.get_asset_check_evaluations()}


def failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Failed steps and what they said: a `dg.Failure`'s description, else the error."""
    out = {}
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            out[event.step_key] = (data.user_failure_data.description if data.user_failure_data
                                   else data.error.message)
    return out


def test_the_crm_assets_and_checks_are_defined_as_agreed() -> None:
    graph = defs.resolve_asset_graph()
    for crm_object in CRM_OBJECTS:
        node = graph.get(crm_object.key)
        assert node.group_name == "crm" and node.kinds == {"hubspot"} and node.pools == {"crm_push"}
        assert node.parent_keys == {crm_object.sync_key}
        assert crm_object.sync_key.path[0] == "crm_sync"
        assert graph.get(dg.AssetCheckKey(crm_object.key, CONFIRMED_CHECK)).blocking is False
        assert graph.get(dg.AssetCheckKey(crm_object.sync_key, KEYS_CHECK)).blocking is True
    assert [k.to_user_string() for k in sorted(graph.get_all_asset_keys()) if k.path[0] == "crm"] == [
        "crm/companies", "crm/deals", "crm/timeline_notes"]
    job = defs.resolve_job_def("push_crm")
    assert {n.name for n in job.graph.node_defs} == {
        "crm__companies", "crm__deals", "crm__timeline_notes",
        *(f"crm_sync__{crm.sync_model}_{KEYS_CHECK}" for crm in CRM_OBJECTS)}


def test_a_push_materialises_with_its_counts_and_a_second_sends_nothing(crm: Firm) -> None:
    crm.reset_requests()
    first = run("companies", "deals")
    assert first.success, failures(first)
    metadata = materialised(first)
    assert set(metadata) == {"companies", "deals"}
    for object_type, m in metadata.items():
        assert all(isinstance(m[name], dg.IntMetadataValue) for name in COUNTS)
        assert isinstance(m["seconds"], dg.FloatMetadataValue) and isinstance(m["first_push"], dg.BoolMetadataValue)
        assert (m["status"].value, m["first_push"].value) == ("success", True)
        assert m["sent"].value == m["total"].value == len(crm.model_values(object_type)) > 0
        assert (m["unchanged"].value, m["rejected"].value, m["pending"].value, m["parked"].value) == (0, 0, 0, 0)
        assert m["write_calls"].value == crm.batch_update_calls(object_type)
        assert f"-{object_type}-" in m["run_id"].value
        assert crm.query("SELECT status, sent FROM reverse_etl.runs WHERE run_id = ?", m["run_id"].value) == [
            ("success", m["sent"].value)]
        assert crm.crm_values(object_type) == crm.model_values(object_type)
    assert {key: c.passed for key, c in checks_of(first).items()} == {
        ("companies", CONFIRMED_CHECK): True, ("deals", CONFIRMED_CHECK): True,
        ("sync_hubspot__companies", KEYS_CHECK): True, ("sync_hubspot__deals", KEYS_CHECK): True}

    crm.reset_requests()
    second = run("companies", "deals")
    assert second.success, failures(second)
    for object_type, m in materialised(second).items():
        assert (m["sent"].value, m["write_calls"].value, m["first_push"].value) == (0, 0, False)
        assert m["unchanged"].value == m["total"].value == metadata[object_type]["total"].value
    assert crm.batch_update_calls("companies") == crm.batch_update_calls("deals") == 0
    assert all(c.passed for c in checks_of(second).values())


def test_rejections_fail_the_check_and_the_step_with_the_counts_recorded(crm: Firm) -> None:
    crm.sandbox_settings(faults={"reject_rate": 0.2, "seed": 4})
    result = run("companies")
    assert not result.success
    m = materialised(result)["companies"]
    assert m["status"].value == "partial" and 0 < m["rejected"].value == m["pending"].value < m["total"].value
    assert m["sent"].value == m["total"].value - m["rejected"].value, "what HubSpot accepted is materialised"
    check = checks_of(result)[("companies", CONFIRMED_CHECK)]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["rejected"].value == m["rejected"].value
    rejected = {r for (r,) in crm.query("SELECT record_id FROM reverse_etl.dead_letters")}
    assert len(rejected) == m["rejected"].value
    assert all(f"| {record} | pending | 1 | VALIDATION_ERROR |" in check.metadata["dead_letters"].value
               for record in rejected)
    assert checks_of(result)[("sync_hubspot__companies", KEYS_CHECK)].passed
    failed = failures(result)
    assert set(failed) == {"crm__companies"}
    assert f"{m['rejected'].value} rejected by HubSpot" in failed["crm__companies"]
    assert "python -m reverse_etl dead-letters --object companies" in failed["crm__companies"]
    assert check.description == failed["crm__companies"]

    # the cause gone, the next run sends just the rejected records and is clean
    crm.sandbox_settings(faults={"reject_rate": 0.0})
    again = run("companies")
    assert again.success, failures(again)
    assert materialised(again)["companies"]["sent"].value == len(rejected)
    assert checks_of(again)[("companies", CONFIRMED_CHECK)].passed


@pytest.mark.parametrize("corruption", ["duplicate", "null"])
def test_a_bad_sync_model_key_blocks_the_push_before_any_request(crm: Firm, corruption: str) -> None:
    relation = "crm_sync.sync_hubspot__companies"
    key = "hubspot_company_id" if corruption == "duplicate" else "NULL"
    crm.execute(f"CREATE OR REPLACE TABLE {relation} AS SELECT * FROM {relation} UNION ALL "
                f"(SELECT * REPLACE ({key} AS hubspot_company_id) FROM {relation} LIMIT 1)")
    crm.reset_requests()
    result = run("companies", "deals")
    assert not result.success
    check = checks_of(result)[("sync_hubspot__companies", KEYS_CHECK)]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    expected = (0, 1) if corruption == "duplicate" else (1, 0)
    assert (check.metadata["null_keys"].value, check.metadata["duplicated_keys"].value) == expected
    assert "nothing is pushed until sync_hubspot__companies is fixed" in check.description
    assert set(materialised(result)) == {"deals"}, "crm/companies is not materialised; deals is unaffected"
    assert ("companies", CONFIRMED_CHECK) not in checks_of(result)
    assert "crm__companies" not in {e.step_key for e in result.all_events if e.is_step_start}
    assert crm.hubspot_requests() and all("/deals" in path for path in crm.hubspot_requests()), "none for companies"

    # pushed without the check (a selection that leaves it out): reverse ETL refuses on its own
    crm.reset_requests()
    alone = run("companies", checks=False)
    assert "SyncModelInvalid" in failures(alone)["crm__companies"] and not materialised(alone)
    assert crm.hubspot_requests() == {}


def test_a_guard_refusal_fails_the_step_saying_how_to_confirm(crm: Firm, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONCORD_REVERSE_ETL_BILLING_MAX_AGE_HOURS", "0")
    crm.reset_requests()
    refused = run("companies")
    assert not refused.success and not materialised(refused)
    message = failures(refused)["crm__companies"]
    assert "push refused, nothing was sent: billing data last synced" in message
    assert "`ops: {crm__companies: {config: {confirm: true}}}`" in message
    assert "python -m reverse_etl push --object companies --confirm" in message
    failure = next(e for e in refused.all_events if e.is_step_failure).step_failure_data.user_failure_data
    assert failure.metadata["status"].value == "refused" and "| record | property |" in failure.metadata[
        "would_send"].value
    assert crm.hubspot_requests() == {}

    confirmed = run("companies", confirm=True)
    assert confirmed.success, failures(confirmed)
    m = materialised(confirmed)["companies"]
    assert m["confirmed_by_operator"].value is True and m["sent"].value == m["total"].value > 0


def test_timeline_notes_are_posted_once(crm: Firm) -> None:
    first = run("timeline_notes")
    assert first.success, failures(first)
    m = materialised(first)["timeline_notes"]
    events = crm.query("SELECT count(*) FROM crm_sync.sync_hubspot__timeline_events")[0][0]
    assert (m["status"].value, m["first_push"].value) == ("success", True)
    assert m["sent"].value == m["total"].value == events > 0
    assert all(c.passed for c in checks_of(first).values()) and len(checks_of(first)) == 2

    crm.reset_requests()
    second = run("timeline_notes")
    assert second.success, failures(second)
    m = materialised(second)["timeline_notes"]
    assert (m["sent"].value, m["unchanged"].value, m["write_calls"].value) == (0, events, 0)
    assert not any(path.startswith("POST") for path in crm.hubspot_requests())
