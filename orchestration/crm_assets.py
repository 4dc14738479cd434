"""Reverse ETL as Dagster assets: `crm/companies`, `crm/deals` and `crm/timeline_notes`, each a
push of its `crm_sync` model to HubSpot, and the checks that keep a bad push from happening or
from passing unnoticed.

- **Before**: a blocking check on each sync model, `keys_present_and_unique`, reads the model
  and fails when a key is null or duplicated; in a run that includes it, the push does not start.
  dagster-dbt already turns each dbt test of severity error into a blocking check (the models'
  `unique`/`not_null` key tests included), and a failing test fails the `dbt build` step, so a
  run that builds the models never pushes one whose tests failed. The Python checks stand guard
  when the models are not rebuilt in the run (the `push_crm` job, a push launched after a manual
  edit of the warehouse). `push()` refuses bad keys itself too, before any HTTP call.
- **After**: every push is a materialisation whose metadata are the push's counts, and the
  asset's `all_records_confirmed` check (severity ERROR) fails when any record is not what
  HubSpot last confirmed (rejected this run, pending, or parked). Such a run also fails the step
  after recording both, with what to do next, so the schedule's run is not green and alerting on
  failed runs sees it; the materialisation stays, because what HubSpot accepted is in the CRM.
- **Refused or broken**: a guard refusal or any other reverse-ETL error fails the step with a
  `dg.Failure` naming the fix (`confirm: true` in the run config after checking a refusal, which
  lists a sample of the values it would have sent).
- **Retried**: a push whose status is `failed` (HubSpot down or rate limiting past the client's
  retries) is tried again by `orchestration.retries.PUSH_RETRY`, minutes later; refusals,
  settings and credentials problems are `dg.Failure(allow_retries=False)` and fail at once.

Concurrency: the pushes share pool `crm_push` (give it a limit of 1), because they share the
portal's rate budget; reverse ETL's own push lock enforces one push at a time regardless, the
pool makes Dagster queue the step instead of leaving it waiting on a lock file. They are not in
pool `warehouse` although they write the warehouse: a push opens it only for short transactions
under the writers' lock and never across an HTTP call, so a load or a dbt build merely waits
moments for it, whereas holding the `warehouse` slot for a whole push would stop every load for
as long as the CRM's rate limit stretches it. The key checks only read the warehouse, but DuckDB
admits no reader beside another process's writer, so they are in pool `warehouse` and read under
the writers' lock.
"""

from dataclasses import dataclass
from typing import Any, Iterator

import dagster as dg
import duckdb
from dagster_dbt import get_asset_key_for_model

from ingestion.warehouse import WriterLock, warehouse_path
from orchestration.dbt_assets import dbt_models
from orchestration.retries import PUSH_RETRY
from reverse_etl import GuardRefused, PushResult, ReverseEtlError, Settings, SettingsError, push
from reverse_etl.contract import spec_for
from reverse_etl.dead_letters import list_dead_letters

PUSH_POOL = "crm_push"
CONFIRMED_CHECK = "all_records_confirmed"
KEYS_CHECK = "keys_present_and_unique"
SAMPLE = 20


@dataclass(frozen=True)
class CrmObject:
    """A CRM object type Concord pushes, and what its asset says about it."""

    object_type: str
    description: str

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey(["crm", self.object_type])

    @property
    def op_name(self) -> str:
        return "__".join(self.key.path)

    @property
    def sync_model(self) -> str:
        return spec_for(self.object_type).model

    @property
    def sync_key(self) -> dg.AssetKey:
        return get_asset_key_for_model([dbt_models], self.sync_model)


CRM_OBJECTS = (
    CrmObject("companies", "Each client's financial status on its HubSpot company (AR balance and overdue, "
                           "last invoice and payment, disputes, unbilled WIP, financial status): what changed "
                           "in crm_sync.sync_hubspot__companies since HubSpot last confirmed it."),
    CrmObject("deals", "Contract value (ERP), billed to date, remaining to bill and scope mismatch on each "
                       "HubSpot deal: what changed in crm_sync.sync_hubspot__deals since HubSpot last confirmed it."),
    CrmObject("timeline_notes", "Business events (invoice issued, payment received, dispute opened, invoice "
                                "overdue) as notes on each client's HubSpot company timeline, exactly once each, "
                                "from crm_sync.sync_hubspot__timeline_events."),
)


class PushConfig(dg.Config):
    """Run config of a push: `confirm: true` pushes although a safety guard refused."""

    confirm: bool = False


# --- the pushes ------------------------------------------------------------------------------


def push_asset(crm: CrmObject) -> dg.AssetsDefinition:
    """`crm/<object_type>`: one `reverse_etl.push`, its counts as metadata, its outcome as a check."""

    @dg.asset(
        key=crm.key, deps=[crm.sync_key], group_name="crm", kinds={"hubspot"}, pool=PUSH_POOL, retry_policy=PUSH_RETRY,
        description=crm.description, metadata={"sync_model": spec_for(crm.object_type).relation},
        check_specs=[dg.AssetCheckSpec(
            CONFIRMED_CHECK, asset=crm.key,
            description="HubSpot confirmed every record of the sync model: none rejected by this push, none "
                        "pending (sent again by the next push) and none parked (held until an operator "
                        "requeues it).")],
    )
    def _push(config: PushConfig) -> Iterator[dg.MaterializeResult]:
        settings = _settings(crm)
        try:
            result = push(crm.object_type, settings=settings, confirm=config.confirm)
        except GuardRefused as refused:
            raise _refusal(crm, refused) from refused
        except ReverseEtlError as exc:
            raise dg.Failure(description=f"{crm.key.to_user_string()}: {type(exc).__name__}: {exc}",
                             allow_retries=False) from exc
        metadata = push_metadata(result)
        yield dg.MaterializeResult(metadata=metadata, check_results=[_confirmed(crm, result, settings)])
        if not result.ok:
            raise dg.Failure(description=_not_clean(crm, result), metadata=metadata,
                             allow_retries=result.status == "failed")

    return _push


def _settings(crm: CrmObject) -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise dg.Failure(description=f"{crm.key.to_user_string()}: {exc}", allow_retries=False) from exc


def push_metadata(result: PushResult) -> dict[str, dg.MetadataValue]:
    """`PushResult.as_metadata()` as typed Dagster metadata; empty values left out."""
    typed: dict[str, dg.MetadataValue] = {}
    for name, value in result.as_metadata().items():
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            typed[name] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            typed[name] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            typed[name] = dg.MetadataValue.float(value)
        else:
            typed[name] = dg.MetadataValue.text(str(value))
    return typed


def _confirmed(crm: CrmObject, result: PushResult, settings: Settings) -> dg.AssetCheckResult:
    counts = {name: dg.MetadataValue.int(getattr(result, name)) for name in ("rejected", "pending", "parked")}
    if result.ok:
        return dg.AssetCheckResult(check_name=CONFIRMED_CHECK, passed=True, metadata=counts,
                                   description=f"HubSpot confirmed all {result.total} records.")
    letters = list_dead_letters(settings, object_type=crm.object_type)
    if letters:
        rows = [f"| {d.record_id} | {d.status} | {d.attempts} | {d.error_category or ''} | "
                f"{(d.error_message or '').replace('|', '/')[:120]} |" for d in letters[:SAMPLE]]
        counts["dead_letters"] = dg.MetadataValue.md(
            "| record | status | attempts | error | message |\n|---|---|---|---|---|\n" + "\n".join(rows)
            + (f"\n\n{len(letters) - SAMPLE} more: `python -m reverse_etl dead-letters --object {crm.object_type}`"
               if len(letters) > SAMPLE else ""))
    return dg.AssetCheckResult(check_name=CONFIRMED_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
                               metadata=counts, description=_not_clean(crm, result))


def _not_clean(crm: CrmObject, result: PushResult) -> str:
    """What a push that left records unconfirmed did, and what to do about it."""
    name, obj = crm.key.to_user_string(), crm.object_type
    lines = [f"{name}: push {result.status} — {result.sent} sent, {result.rejected} rejected by HubSpot, "
             f"{result.pending} pending, {result.parked} parked of {result.total} (run {result.run_id})."]
    if result.message:
        lines.append(result.message)
    if result.pending:
        lines.append("Pending records are sent again by the next push"
                     + (" once HubSpot's daily limit resets." if result.status == "stopped" else "."))
    if result.rejected or result.parked:
        lines.append(f"See why HubSpot rejected them: `python -m reverse_etl dead-letters --object {obj}`.")
    if result.parked:
        lines.append(f"Parked records are held back until the cause is fixed and they are requeued: "
                     f"`python -m reverse_etl requeue --object {obj}`.")
    return " ".join(lines)


def _refusal(crm: CrmObject, refused: GuardRefused) -> dg.Failure:
    name, obj = crm.key.to_user_string(), crm.object_type
    metadata: dict[str, Any] = {"guard_refusals": dg.MetadataValue.text("; ".join(refused.refusals))}
    if refused.result is not None:
        metadata.update(push_metadata(refused.result))
        rows = [row for row in refused.result.diff_table() if row[2] != row[3]]
        if rows:
            metadata["would_send"] = dg.MetadataValue.md(
                "| record | property | confirmed | new |\n|---|---|---|---|\n"
                + "\n".join(f"| {r} | {p} | {old if old is not None else '(never sent)'} | {new} |"
                            for r, p, old, new in rows[:SAMPLE])
                + (f"\n\n{len(rows) - SAMPLE} more values: `python -m reverse_etl dry-run --object {obj}`"
                   if len(rows) > SAMPLE else ""))
    return dg.Failure(
        description=f"{name}: push refused, nothing was sent: {'; '.join(refused.refusals)}. Check why (the "
                    f"metadata show what it would send; `python -m reverse_etl dry-run --object {obj}` shows "
                    f"all of it), then re-run with the run config "
                    f"`ops: {{{crm.op_name}: {{config: {{confirm: true}}}}}}` to confirm, "
                    f"or `python -m reverse_etl push --object {obj} --confirm`.",
        metadata=metadata, allow_retries=False)


# --- the sync models' keys -------------------------------------------------------------------


def keys_check(crm: CrmObject) -> dg.AssetChecksDefinition:
    """The blocking `keys_present_and_unique` check on the sync model `crm/<object_type>` pushes."""
    spec = spec_for(crm.object_type)

    @dg.asset_check(
        asset=crm.sync_key, name=KEYS_CHECK, blocking=True, pool="warehouse",
        description=f"Every row of {spec.relation} has a {spec.key} and no two share one, so each row is "
                    f"exactly one HubSpot {crm.object_type.replace('_', ' ')} write; {crm.key.to_user_string()} "
                    f"does not run in a run where this failed.")
    def _keys() -> dg.AssetCheckResult:
        try:
            rows, nulls, duplicated = key_counts(spec.relation, spec.key)
        except duckdb.CatalogException:
            return dg.AssetCheckResult(passed=False, description=f"{spec.relation} is not in the warehouse; "
                                                                 f"build it (dbt build --select {spec.model}).")
        metadata = {"rows": dg.MetadataValue.int(rows), "null_keys": dg.MetadataValue.int(nulls),
                    "duplicated_keys": dg.MetadataValue.int(len(duplicated))}
        if duplicated:
            metadata["duplicates"] = dg.MetadataValue.md(
                f"| {spec.key} | rows |\n|---|---|\n" + "\n".join(f"| {k} | {n} |" for k, n in duplicated[:SAMPLE]))
        passed = not nulls and not duplicated
        return dg.AssetCheckResult(
            passed=passed, metadata=metadata,
            description=f"{rows} rows, keys present and unique." if passed else
            f"{nulls} rows without a {spec.key}, {len(duplicated)} keys on more than one row: nothing is pushed "
            f"until {spec.model} is fixed and rebuilt.")

    return _keys


def key_counts(relation: str, key: str) -> tuple[int, int, list[tuple[str, int]]]:
    """Rows of `relation`, those with a null or blank `key`, and each duplicated key with its row count."""
    path = warehouse_path()
    with WriterLock(path), duckdb.connect(str(path), read_only=True) as con:
        rows, nulls = con.execute(f"SELECT count(*), count(*) FILTER (WHERE nullif(trim(CAST({key} AS VARCHAR)), '') "
                                  f"IS NULL) FROM {relation}").fetchone()
        duplicated = con.execute(f"SELECT CAST({key} AS VARCHAR), count(*) FROM {relation} WHERE {key} IS NOT NULL "
                                 f"GROUP BY 1 HAVING count(*) > 1 ORDER BY 2 DESC, 1").fetchall()
    return rows, nulls, duplicated


CRM_ASSETS = [push_asset(crm) for crm in CRM_OBJECTS]
SYNC_MODEL_CHECKS = [keys_check(crm) for crm in CRM_OBJECTS]
CRM_PUSH_SELECTION = dg.AssetSelection.groups("crm") | dg.AssetSelection.checks(*SYNC_MODEL_CHECKS)
