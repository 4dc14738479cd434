"""Concord's Dagster definitions: every asset in one lineage graph, and when it runs."""

from __future__ import annotations

import dagster as dg

from orchestration.dbt_assets import DBT_RESOURCE, dbt_models
from orchestration.ingestion_assets import INGESTION_ASSETS

ASSETS = [*INGESTION_ASSETS, dbt_models]
RESOURCES = {"dbt": DBT_RESOURCE}

ingest_job = dg.define_asset_job(
    "ingest", selection=dg.AssetSelection.key_prefixes("raw"),
    description="Incremental load of every system into the warehouse.")

hourly_ingest = dg.ScheduleDefinition(
    job=ingest_job, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Hourly incremental sync of the four systems.")

defs = dg.Definitions(assets=ASSETS, resources=RESOURCES, jobs=[ingest_job], schedules=[hourly_ingest])
