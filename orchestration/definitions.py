"""Concord's Dagster definitions: every asset in one lineage graph, and when it runs."""

from __future__ import annotations

import dagster as dg

from orchestration import jobs, sensors
from orchestration.alerts import alert_on_run_failure
from orchestration.checks import DATA_CHECKS
from orchestration.crm_assets import CRM_ASSETS, SYNC_MODEL_CHECKS
from orchestration.dbt_assets import DBT_RESOURCE, dbt_models
from orchestration.ingestion_assets import INGESTION_ASSETS
from orchestration.report_assets import REPORT_ASSETS

ASSETS = [*INGESTION_ASSETS, dbt_models, *CRM_ASSETS, *REPORT_ASSETS]
ASSET_CHECKS = [*SYNC_MODEL_CHECKS, *DATA_CHECKS]  # DATA_CHECKS: freshness, exception thresholds, SLAs
RESOURCES = {"dbt": DBT_RESOURCE}

JOBS = [*jobs.JOBS]  # full_sync, incremental_sync, billing_events, ingest, push_crm
SCHEDULES = [*jobs.SCHEDULES]  # hourly_incremental_sync, nightly_full_sync
SENSORS = [*sensors.SENSORS, alert_on_run_failure]  # stripe_billing_events; run-failure alerting

defs = dg.Definitions(assets=ASSETS, asset_checks=ASSET_CHECKS, resources=RESOURCES, jobs=JOBS,
                      schedules=SCHEDULES, sensors=SENSORS)
