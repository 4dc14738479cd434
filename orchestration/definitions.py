"""Concord's Dagster definitions: every asset in one lineage graph, and when it runs."""

from __future__ import annotations

import dagster as dg

from orchestration.ingestion_assets import INGESTION_ASSETS

ASSETS = [*INGESTION_ASSETS]

ingest_job = dg.define_asset_job(
    "ingest", selection=dg.AssetSelection.key_prefixes("raw"),
    description="Incremental load of every system into the warehouse.")

hourly_ingest = dg.ScheduleDefinition(
    job=ingest_job, cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Hourly incremental sync of the four systems.")

defs = dg.Definitions(assets=ASSETS, jobs=[ingest_job], schedules=[hourly_ingest])
