"""Concord's jobs, and the schedules that run them without anyone watching.

| job | what it runs | started by |
|---|---|---|
| `full_sync` | everything (`*`): the four systems' loads, `dbt build` of every model, the CRM pushes, the reconciliation report, and every check | `nightly_full_sync`, 02:00 |
| `incremental_sync` | the loads, `dbt build` and the CRM pushes, with their checks; nothing else | `hourly_incremental_sync`, every other hour |
| `billing_events` | `raw/stripe/*`, the dbt models between them and the pushes, and the pushes | the `stripe_billing_events` sensor (`orchestration.sensors`) |
| `ingest` | the loads only | an operator |
| `push_crm` | the pushes (and the sync models' key checks), the models as they stand | an operator |

**Full versus incremental.** Every source is incremental by construction (HubSpot's search on
`hs_lastmodifieddate`, Stripe's events feed, Harvest's `updated_since`, the ERP's `write_date`
with a look-back), and none offers a full re-scan short of dropping its dlt state; a full
`dbt build --full-refresh` would throw away `reconciliation_exception_history`, whose
`first_detected_at` is what ages an exception. So the two differ in scope, not in how they read:
`incremental_sync` is exactly ingestion, dbt and the pushes, chosen by name (an asset added to
the project later runs nightly only, until it is added here); `full_sync` is the whole graph, so
the nightly run also writes the reconciliation report (a page finance works from each morning,
with one trend point per run, so hourly points would only add noise) and runs every check,
including any that is not on an hourly asset.

**When.** `nightly_full_sync` at 02:00, `hourly_incremental_sync` on the hour except 02:00 (the
nightly run does everything it would). Both in `CONCORD_SCHEDULE_TIMEZONE` (an IANA name, default
UTC), read when the definitions load; an unknown name fails the load, saying so. The hourly run
skips its tick while a sync is queued or running, since the next one catches up.

**Default status: STOPPED.** The schedules launch runs that write the warehouse and push to the
CRM, so they start when an operator switches them on in the UI (or `dagster schedule start`),
once the vendor credentials and the instance (`.dagster_home/dagster.yaml`) are in place, not
the moment someone opens the UI on a laptop.

**One writer.** Every job that writes the warehouse carries the run tag `concord/warehouse:
write`, which the instance limits to one run at a time (`.dagster_home/dagster.yaml`), so an
hourly run waits in the queue behind the nightly one instead of occupying a run slot while its
steps wait for pool `warehouse`. The pools still serialise steps of runs without the tag (an
asset materialised from the UI).
"""

from __future__ import annotations

import os
import zoneinfo

import dagster as dg

from orchestration.crm_assets import CRM_ASSETS, CRM_PUSH_SELECTION
from orchestration.dbt_assets import dbt_models

TIMEZONE_ENV = "CONCORD_SCHEDULE_TIMEZONE"
WAREHOUSE_TAG = "concord/warehouse"
SYNC_TAG = "concord/sync"
WRITES_WAREHOUSE = {WAREHOUSE_TAG: "write"}
NOT_YET_STARTED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING]
IN_PROGRESS = [*NOT_YET_STARTED, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]

RAW = dg.AssetSelection.key_prefixes("raw")
PUSHES = dg.AssetSelection.assets(*CRM_ASSETS)
RAW_STRIPE = dg.AssetSelection.key_prefixes(["raw", "stripe"])


def schedule_timezone() -> str:
    """`CONCORD_SCHEDULE_TIMEZONE`, checked to be an IANA time zone; UTC when unset."""
    name = os.environ.get(TIMEZONE_ENV) or "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{TIMEZONE_ENV}={name!r} is not an IANA time zone name such as UTC or "
                         f"Europe/Amsterdam") from None
    return name


# --- jobs -------------------------------------------------------------------------------------

full_sync_job = dg.define_asset_job(
    "full_sync", selection=dg.AssetSelection.all(),
    tags={**WRITES_WAREHOUSE, SYNC_TAG: "full"},
    description="Nightly full reconciliation: load all four systems, dbt build every model and run its tests, "
                "push the financial status to HubSpot, write the reconciliation report, run every check.")

incremental_sync_job = dg.define_asset_job(
    "incremental_sync", selection=RAW | dg.AssetSelection.assets(dbt_models) | PUSHES,
    tags={**WRITES_WAREHOUSE, SYNC_TAG: "incremental"},
    description="Hourly sync: load what changed in the four systems, dbt build, push to HubSpot; "
                "no reconciliation report (that is the nightly full_sync's).")

billing_events_job = dg.define_asset_job(
    "billing_events",
    selection=RAW_STRIPE | (RAW_STRIPE.downstream() & PUSHES.upstream()),
    tags={**WRITES_WAREHOUSE, SYNC_TAG: "billing_events", "dagster/priority": "1"},
    description="Stripe billing events in near real time: load Stripe's changes, rebuild the dbt models "
                "between raw/stripe and the CRM pushes, push. Requested by the stripe_billing_events sensor; "
                "queued ahead of other syncs (priority 1).")

ingest_job = dg.define_asset_job(
    "ingest", selection=RAW, tags=WRITES_WAREHOUSE,
    description="Incremental load of every system into the warehouse.")

push_crm_job = dg.define_asset_job(
    "push_crm", selection=CRM_PUSH_SELECTION,
    description="Push the crm_sync models as they are to HubSpot, once their keys are checked. "
                "Run config `ops: {crm__companies: {config: {confirm: true}}}` pushes past a guard's refusal.")

SYNC_JOB_NAMES = (full_sync_job.name, incremental_sync_job.name)


# --- schedules --------------------------------------------------------------------------------

def sync_in_progress(instance: dg.DagsterInstance, job_names: tuple[str, ...] = SYNC_JOB_NAMES,
                     statuses: list[dg.DagsterRunStatus] = IN_PROGRESS) -> dg.DagsterRun | None:
    """A run of one of `job_names` in one of `statuses`, if there is one."""
    for job_name in job_names:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=statuses), limit=1)
        if runs:
            return runs[0]
    return None


@dg.schedule(
    job=incremental_sync_job, cron_schedule="0 0-1,3-23 * * *", execution_timezone=schedule_timezone(),
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every hour but 02:00 (the nightly full_sync's): incremental_sync. Skips the tick while a sync "
                "is queued or running; the sources are incremental, so the next run takes what this one would have.")
def hourly_incremental_sync(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    busy = sync_in_progress(context.instance)
    if busy is not None:
        return dg.SkipReason(f"{busy.job_name} run {busy.run_id} is {busy.status.value.lower()}; "
                             f"the next hourly run takes in what this one would have")
    return dg.RunRequest()


nightly_full_sync = dg.ScheduleDefinition(
    name="nightly_full_sync", job=full_sync_job, cron_schedule="0 2 * * *", execution_timezone=schedule_timezone(),
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="02:00: full_sync, the whole graph including the reconciliation report.")

JOBS = [full_sync_job, incremental_sync_job, billing_events_job, ingest_job, push_crm_job]
SCHEDULES = [hourly_incremental_sync, nightly_full_sync]
