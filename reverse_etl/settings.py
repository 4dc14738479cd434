"""Reverse-ETL settings, read from the environment like the rest of Concord.

The CRM is the one the HubSpot settings name (`SOURCES__HUBSPOT__BASE_URL`,
`SOURCES__HUBSPOT__ACCESS_TOKEN`, or the same keys in `.dlt/secrets.toml`): reverse ETL writes
back to the portal ingestion reads. The warehouse is `CONCORD_WAREHOUSE`. Every knob has a
default an operator can override with `CONCORD_REVERSE_ETL_<NAME>`:

| variable (`CONCORD_REVERSE_ETL_` +) | default | what |
|---|---|---|
| `RATE_LIMIT` | 171 | requests per window the client allows itself: 90% of HubSpot's 190 per 10 s |
| `RATE_WINDOW_S` | 10 | the rolling window the budget is counted over (HubSpot's TEN_SECONDLY_ROLLING) |
| `BATCH_SIZE` | 100 | inputs per batch update (HubSpot's maximum) |
| `MAX_CHANGE_SHARE` | 0.5 | refuse (until confirmed) when more than this share of records would change |
| `CHANGE_GUARD_MIN_RECORDS` | 10 | ...and at least this many: one change among three records is no alarm |
| `BILLING_MAX_AGE_HOURS` | 26 | refuse when billing (Stripe) was last synced longer ago than this |
| `ERP_MAX_AGE_HOURS` | 26 | the same for the ERP |
| `DEAD_LETTER_MAX_ATTEMPTS` | 5 | runs that may see a record rejected before it is parked |
| `MAX_RETRIES` | 5 | retries of a batch after a 5xx or a timeout |
| `TIMEOUT_S` | 30 | read timeout of one request |
| `LOCK_TIMEOUT_S` | 3600 | how long a push waits for another push to finish |
| `NOTE_SETTLE_S` | 10 | how long after a note create of unknown outcome HubSpot is asked whether it holds the note |

The token is never part of a settings repr, a log line or anything written to the warehouse.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

BASE_URL_ENV = "SOURCES__HUBSPOT__BASE_URL"
TOKEN_ENV = "SOURCES__HUBSPOT__ACCESS_TOKEN"
WAREHOUSE_ENV = "CONCORD_WAREHOUSE"
DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
ENV_PREFIX = "CONCORD_REVERSE_ETL_"
HUBSPOT_BATCH_MAX = 100


class SettingsError(ValueError):
    """A setting is missing or out of range; the message names the variable to fix."""


@dataclass(frozen=True)
class Settings:
    """Where reverse ETL writes and how carefully. Build with `Settings.from_env()`."""

    base_url: str
    access_token: str = field(repr=False)
    warehouse: Path
    rate_limit: int = 171
    rate_window_s: float = 10.0
    batch_size: int = HUBSPOT_BATCH_MAX
    max_change_share: float = 0.5
    change_guard_min_records: int = 10
    billing_max_age_hours: float = 26.0
    erp_max_age_hours: float = 26.0
    dead_letter_max_attempts: int = 5
    max_retries: int = 5
    timeout_s: float = 30.0
    lock_timeout_s: float = 3600.0
    note_settle_s: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        object.__setattr__(self, "warehouse", Path(self.warehouse).resolve())
        checks = {
            "RATE_LIMIT": self.rate_limit >= 1,
            "RATE_WINDOW_S": self.rate_window_s > 0,
            "BATCH_SIZE": 1 <= self.batch_size <= HUBSPOT_BATCH_MAX,
            "MAX_CHANGE_SHARE": 0 <= self.max_change_share <= 1,
            "CHANGE_GUARD_MIN_RECORDS": self.change_guard_min_records >= 0,
            "BILLING_MAX_AGE_HOURS": self.billing_max_age_hours >= 0,
            "ERP_MAX_AGE_HOURS": self.erp_max_age_hours >= 0,
            "DEAD_LETTER_MAX_ATTEMPTS": self.dead_letter_max_attempts >= 1,
            "MAX_RETRIES": self.max_retries >= 0,
            "TIMEOUT_S": self.timeout_s > 0,
            "LOCK_TIMEOUT_S": self.lock_timeout_s >= 0,
            "NOTE_SETTLE_S": self.note_settle_s >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise SettingsError(f"out of range: {', '.join(ENV_PREFIX + name for name in bad)} "
                                f"(batch size is 1-{HUBSPOT_BATCH_MAX}, shares 0-1, the rest positive)")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `env` (default: the process environment), then keyword overrides."""
        env = os.environ if env is None else env
        base_url = overrides.pop("base_url", None) or env.get(BASE_URL_ENV) or _dlt_value("base_url")
        token = overrides.pop("access_token", None) or env.get(TOKEN_ENV) or _dlt_value("access_token")
        missing = [name for name, value in ((BASE_URL_ENV, base_url), (TOKEN_ENV, token)) if not value]
        if missing:
            raise SettingsError(f"reverse ETL needs {' and '.join(missing)} (the HubSpot portal it writes to)")
        warehouse = overrides.pop("warehouse", None) or env.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE
        knobs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in {"base_url", "access_token", "warehouse"}:
                continue
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw not in (None, ""):
                caster = int if isinstance(f.default, int) else float
                try:
                    knobs[f.name] = caster(raw)
                except ValueError:
                    raise SettingsError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a number") from None
        return cls(base_url=base_url, access_token=token, warehouse=Path(warehouse), **{**knobs, **overrides})

    def with_(self, **changes: Any) -> Settings:
        """A copy with some settings changed (tests, one-off operator runs)."""
        return replace(self, **changes)


def _dlt_value(name: str) -> str | None:
    """`sources.hubspot.<name>` from dlt's config files (`.dlt/secrets.toml`), as ingestion reads it."""
    try:
        import dlt

        value = dlt.secrets.get(f"sources.hubspot.{name}")
    except Exception:  # noqa: BLE001 - no dlt config is no value
        return None
    return str(value) if value else None
