"""Harvest (PSA): clients, projects, users, tasks, time entries and expenses.

Every list is read with `updated_since` and `per_page=2000`, following `links.next`. Pages
are flat enough to become Arrow tables in the resource (nested `user`, `project`, ... objects
become `user__id`, `project__code` columns), which spares millions of time entries dlt's
row-by-row normaliser. Records that break their contract go to `quarantine` instead.

Harvest says nothing of deleted records. `time_entry_presence` lists the time entries that
exist for the last `deletion_window_days` of spent dates up to the newest (their ids and spent
dates, replaced every run); staging takes a landed entry of that window that
the list lacks, and that was loaded before the list, as deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

import dlt
from dlt.extract.resource import DltResource

from ingestion.harvest.helpers import UpdatedSinceCursor, newest_spent_date, presence, to_arrow, walk
from ingestion.harvest.settings import (
    COLUMN_TYPES, CONTRACTS, DELETION_WINDOW_DAYS, LOOKBACK_SECONDS, PER_PAGE, PRESENCE_TABLE, RESOURCES, USER_AGENT,
)
from ingestion.http import ApiClient, prefetched
from ingestion.quarantine import split_arrow

CREDENTIALS_HINT = "SOURCES__HARVEST__ACCESS_TOKEN and SOURCES__HARVEST__ACCOUNT_ID"


def client(base_url: str, access_token: str, account_id: str) -> ApiClient:
    return ApiClient(
        system="harvest",
        base_url=base_url,
        headers={"Authorization": f"Bearer {access_token}", "Harvest-Account-Id": str(account_id),
                 "User-Agent": USER_AGENT},
        credentials_hint=CREDENTIALS_HINT,
    )


def _lister(name: str) -> DltResource:
    types = COLUMN_TYPES[name]
    contract = CONTRACTS[name]

    def read(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value,
             account_id: str = dlt.secrets.value, lookback_seconds: int = LOOKBACK_SECONDS) -> Iterator[Any]:
        api = client(base_url, access_token, account_id)
        cursor = UpdatedSinceCursor(dlt.current.resource_state(), lookback_seconds)
        params: dict[str, Any] = {"per_page": PER_PAGE}
        if cursor.updated_since:
            params["updated_since"] = cursor.updated_since
        for page in prefetched(walk(api, name, params)):
            good, bad = split_arrow(contract, page)
            fresh = [record for record in good if cursor.is_new(record)]
            if fresh:
                yield to_arrow(fresh, types)
            yield from bad
        cursor.save()

    read.__doc__ = f"Harvest {name}, changed since the last run."
    return dlt.resource(read, name=name, primary_key="id", write_disposition="merge")


@dlt.resource(name=PRESENCE_TABLE, write_disposition="replace")
def time_entry_presence(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value,
                        account_id: str = dlt.secrets.value,
                        deletion_window_days: int = DELETION_WINDOW_DAYS) -> Iterator[Any]:
    """The Harvest time entries that exist with a spent date in the last `deletion_window_days`
    up to the newest. Landed whole every run: dlt empties a `replace` table a run yields
    nothing to, so an unchanged list cannot be skipped."""
    if deletion_window_days <= 0:
        return
    api = client(base_url, access_token, account_id)
    newest = newest_spent_date(api)
    if newest is not None:
        yield presence(api, newest - dt.timedelta(days=deletion_window_days))


@dlt.source(name="harvest")
def source() -> list[DltResource]:
    """All Harvest resources; settings resolve when the load runs."""
    return [*(_lister(name) for name in RESOURCES), time_entry_presence]
