"""Safety guards: reasons to refuse a push until an operator confirms it.

- **Change share**: more than `max_change_share` of the records the CRM holds confirmed values
  for would change (and at least `change_guard_min_records` of them). A model bug that zeroes
  every balance looks exactly like this. A record with no confirmed value has no baseline to
  change from: it is new, not changed, and does not count — so a **first push** (nothing of this
  object type ever confirmed; the result says `first_push`) and the rest of a push the daily
  limit cut short go without asking. Dropping the `reverse_etl` schema therefore re-sends
  everything without asking; that is the documented way to force a full resync. A record whose
  only difference is a value that moves with the calendar alone (days overdue, which ticks on
  for every overdue client every day) does not count either: that change is routine.
- **Freshness**: billing (Stripe) or ERP data last synced longer ago than its target, or never.
  The figures the CRM would show are computed from them. The data's age is the latest successful
  sync: a dlt load, or a later run that found nothing new, which dlt does not record but
  `ingestion.source_syncs` does (`ingestion.warehouse.last_synced`). The default targets are 26
  hours: a day of hourly loads, and slack.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import duckdb

from ingestion.warehouse import last_synced
from reverse_etl.diff import Diff
from reverse_etl.settings import Settings

FRESHNESS_SOURCES = {"billing": "stripe", "erp": "erp"}


@dataclass(frozen=True)
class GuardReport:
    first_push: bool
    change_share: float
    loaded_at: dict[str, dt.datetime | None] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)


def latest_loads(con: duckdb.DuckDBPyConnection) -> dict[str, dt.datetime | None]:
    """When each guarded source was last synced successfully."""
    return {name: last_synced(con, system) for name, system in FRESHNESS_SOURCES.items()}


def evaluate(diff: Diff, *, first_push: bool, loaded_at: dict[str, dt.datetime | None], settings: Settings,
             now: dt.datetime | None = None) -> GuardReport:
    """The guards' verdict on a diff; `refusals` is empty when the push may go without confirmation."""
    now = now or dt.datetime.now(dt.timezone.utc)
    refusals: list[str] = []
    changed = len(diff.changes) - diff.new - diff.routine
    known = diff.total - diff.new
    share = changed / known if known else 0.0
    if share > settings.max_change_share and changed >= settings.change_guard_min_records:
        refusals.append(f"{changed} of {known} records ({share:.0%}) would change, more than the "
                        f"{settings.max_change_share:.0%} allowed (CONCORD_REVERSE_ETL_MAX_CHANGE_SHARE)")
    targets = {"billing": settings.billing_max_age_hours, "erp": settings.erp_max_age_hours}
    for name, max_age in targets.items():
        stamp = loaded_at.get(name)
        if stamp is None:
            refusals.append(f"{name} data (raw_{FRESHNESS_SOURCES[name]}) was never loaded")
            continue
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        age_h = (now - stamp).total_seconds() / 3600
        if age_h > max_age:
            refusals.append(f"{name} data last synced {age_h:.1f} h ago, older than its {max_age:g} h target "
                            f"(CONCORD_REVERSE_ETL_{name.upper()}_MAX_AGE_HOURS)")
    return GuardReport(first_push=first_push, change_share=share, loaded_at=loaded_at, refusals=refusals)
