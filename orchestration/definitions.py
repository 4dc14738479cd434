"""Concord's Dagster definitions: every asset in one lineage graph, and when it runs."""

from __future__ import annotations

import dagster as dg

from orchestration.crm_assets import CRM_ASSETS, CRM_PUSH_SELECTION, SYNC_MODEL_CHECKS
from orchestration.dbt_assets import DBT_RESOURCE, dbt_models
from orchestration.ingestion_assets import INGESTION_ASSETS

ASSETS = [*INGESTION_ASSETS, dbt_models, *CRM_ASSETS]
ASSET_CHECKS = [*SYNC_MODEL_CHECKS]
RESOURCES = {"dbt": DBT_RESOURCE}

ingest_job = dg.define_asset_job(
    "ingest", selection=dg.AssetSelection.key_prefixes("raw"),
    description="Incremental load of every system into the warehouse.")

push_crm_job = dg.define_asset_job(
    "push_crm", selection=CRM_PUSH_SELECTION,
    description="Push the crm_sync models as they are to HubSpot, once their keys are checked. "
                "Run config `ops: {crm__companies: {config: {confirm: true}}}` pushes past a guard's refusal.")

hourly_ingest = dg.ScheduleDefinition(
    job=ingest_job, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Hourly incremental sync of the four systems.")

defs = dg.Definitions(assets=ASSETS, asset_checks=ASSET_CHECKS, resources=RESOURCES, jobs=[ingest_job, push_crm_job],
                      schedules=[hourly_ingest])
