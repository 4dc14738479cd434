"""Harvest (PSA): clients, projects, users, tasks, time entries and expenses.

Every list is read with `updated_since` and `per_page=2000`, following `links.next`. Pages
are flat enough to become Arrow tables in the resource (nested `user`, `project`, ... objects
become `user__id`, `project__code` columns), which spares millions of time entries dlt's
row-by-row normaliser. Records that break their contract go to `quarantine` instead.

Harvest says nothing of deleted records. After walking the time entries, the same resource
lists every time entry that exists with a spent date in the last `deletion_window_days` up to
the newest `updated_at` it has seen, and lands their ids and spent dates in
`time_entry_presence` (replaced by each list); staging takes a landed entry of that window that
the list lacks, and that was loaded before the list, as deleted.
"""

from __future__ import annotations

from typing import Any, Iterator

import dlt
from dlt.extract.resource import DltResource

from ingestion.harvest.helpers import UpdatedSinceCursor, presence, sweep_start, to_arrow, walk
from ingestion.harvest.settings import (
    COLUMN_TYPES, CONTRACTS, DELETION_WINDOW_DAYS, LOOKBACK_SECONDS, PER_PAGE, PRESENCE_TABLE, RESOURCES, USER_AGENT,
)
from ingestion.http import ApiClient, prefetched
from ingestion.quarantine import split_arrow

CREDENTIALS_HINT = "SOURCES__HARVEST__ACCESS_TOKEN and SOURCES__HARVEST__ACCOUNT_ID"
# Tables a resource lands beside its own: table -> the resource that lands it.
LANDED_BESIDE = {PRESENCE_TABLE: "time_entries"}


def client(base_url: str, access_token: str, account_id: str) -> ApiClient:
    return ApiClient(
        system="harvest",
        base_url=base_url,
        headers={"Authorization": f"Bearer {access_token}", "Harvest-Account-Id": str(account_id),
                 "User-Agent": USER_AGENT},
        credentials_hint=CREDENTIALS_HINT,
    )


def _changes(api: ApiClient, name: str, cursor: UpdatedSinceCursor) -> Iterator[Any]:
    """The records of list `name` changed since the last run, as Arrow pages, and the records
    that break their contract, as quarantine rows."""
    types, contract = COLUMN_TYPES[name], CONTRACTS[name]
    params: dict[str, Any] = {"per_page": PER_PAGE}
    if cursor.updated_since:
        params["updated_since"] = cursor.updated_since
    for page in prefetched(walk(api, name, params)):
        good, bad = split_arrow(contract, page)
        fresh = [record for record in good if cursor.is_new(record)]
        if fresh:
            yield to_arrow(fresh, types)
        yield from bad


def _lister(name: str) -> DltResource:
    def read(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value,
             account_id: str = dlt.secrets.value, lookback_seconds: int = LOOKBACK_SECONDS) -> Iterator[Any]:
        cursor = UpdatedSinceCursor(dlt.current.resource_state(), lookback_seconds)
        yield from _changes(client(base_url, access_token, account_id), name, cursor)
        cursor.save()

    read.__doc__ = f"Harvest {name}, changed since the last run."
    return dlt.resource(read, name=name, primary_key="id", write_disposition="merge")


# The presence list's own table: replaced (not merged) by each list, its columns declared.
# `columns` is given in full because a variant starts from a copy of the resource's hints.
PRESENCE_HINTS = dlt.mark.make_hints(
    table_name=PRESENCE_TABLE, write_disposition="replace", primary_key=[], merge_key=[],
    columns={"id": {"data_type": "bigint", "nullable": False}, "spent_date": {"data_type": "date"},
             "swept_from": {"data_type": "date"}})


@dlt.resource(name="time_entries", primary_key="id", write_disposition="merge")
def time_entries(base_url: str = dlt.config.value, access_token: str = dlt.secrets.value,
                 account_id: str = dlt.secrets.value, lookback_seconds: int = LOOKBACK_SECONDS,
                 deletion_window_days: int = DELETION_WINDOW_DAYS) -> Iterator[Any]:
    """Harvest time entries changed since the last run; then the deletion sweep: the ids and
    spent dates of every entry that exists with a spent date from `deletion_window_days` before
    the newest `updated_at` seen, into `time_entry_presence` (0 turns the sweep off).

    The sweep is the tail of this resource rather than a resource of its own because it must
    read after the walk: every entry the warehouse holds that still exists is then in the list,
    and the window is anchored on the stamp the walk has just seen (Harvest's clock), which the
    first run knows too. Two resources would be interleaved by dlt's default `round_robin`
    extraction (`fifo` is a pipeline-wide setting, and a transformer runs once per page, not
    once after the last). Each list page is yielded as an Arrow table marked with its own table
    hints (`dlt.mark.with_hints`, a table variant, as the quarantine rows are), so the list is
    replaced by each run's while the entries are merged. An empty window yields nothing and
    leaves the previous list in place, which still says truly what was gone when it was taken.
    """
    api = client(base_url, access_token, account_id)
    cursor = UpdatedSinceCursor(dlt.current.resource_state(), lookback_seconds)
    yield from _changes(api, "time_entries", cursor)
    cursor.save()
    swept_from = sweep_start(cursor.latest, deletion_window_days)
    if swept_from is not None:
        for page in presence(api, swept_from):
            yield dlt.mark.with_hints(page, PRESENCE_HINTS, create_table_variant=True)


@dlt.source(name="harvest")
def source() -> list[DltResource]:
    """All Harvest resources; settings resolve when the load runs."""
    return [time_entries if name == "time_entries" else _lister(name) for name in RESOURCES]
