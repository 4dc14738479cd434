"""Reverse ETL: each client's financial status from `crm_sync` into HubSpot companies and deals.

Only what changed since the CRM last confirmed it is sent, in batches within a rate budget,
with retries, dead letters for rejected records and an audit row for every attempted write;
all state lives in the warehouse (schema `reverse_etl`). No Dagster here: `orchestration/`
calls these functions and reports their counts.

    from reverse_etl import push
    result = push("companies")          # PushResult: sent / unchanged / rejected / pending / parked
    result = push("deals", confirm=True)
    preview = push("companies", dry_run=True)

`python -m reverse_etl push|dry-run|dead-letters|requeue [--confirm]` does the same from a shell.
"""

from reverse_etl.client import HubSpotClient
from reverse_etl.dead_letters import list_dead_letters, requeue
from reverse_etl.errors import (
    CredentialsRejected,
    GuardRefused,
    PropertySetupError,
    ReverseEtlError,
    SyncModelInvalid,
)
from reverse_etl.properties import ensure_properties
from reverse_etl.push import PushResult, dry_run, push
from reverse_etl.settings import Settings, SettingsError

__all__ = [
    "CredentialsRejected", "GuardRefused", "HubSpotClient", "PropertySetupError", "PushResult",
    "ReverseEtlError", "Settings", "SettingsError", "SyncModelInvalid", "dry_run", "ensure_properties",
    "list_dead_letters", "push", "requeue",
]
