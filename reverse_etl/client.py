"""The HubSpot client reverse ETL writes through: one budget, a retry policy made for writes.

Why not ingestion's `ApiClient`: writes need other answers. A 429 tells two stories — the
ten-second burst limit (`TEN_SECONDLY_ROLLING`, and fault-mode storms that look like it) is
waited out and the *same* batch sent again, but the `DAILY` limit will not lift for hours, so
the push stops cleanly and leaves the rest pending. A 4xx on a batch is not an error to raise
but an answer the caller splits into per-record outcomes. Retrying a write after a timeout is
safe because every value is absolute: sending it twice leaves the CRM as sending it once.

Every request passes through a `RollingWindowLimiter` shared by all clients of one account in
the process, so the client stays under its budget before HubSpot has to say so.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

from reverse_etl.errors import (
    BatchRejected,
    CredentialsRejected,
    CrmUnavailable,
    DailyLimitReached,
    OutcomeUnknown,
)
from reverse_etl.ratelimit import RollingWindowLimiter, shared_limiter
from reverse_etl.settings import TOKEN_ENV, Settings

logger = logging.getLogger("concord.reverse_etl")

MESSAGE_MAX = 1000


@dataclass
class RetryPolicy:
    """Server faults and timeouts: `max_retries` retries, exponential backoff, jitter. Burst 429s:
    the server's Retry-After, never less than a floor that doubles (a `Retry-After: 0` from a
    server still over its limit must not become a tight loop), at most `max_rate_limit_waits`."""

    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    max_rate_limit_waits: int = 30
    rate_limit_floor_s: float = 0.2
    rate_limit_cap_s: float = 10.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** attempt)
        return rng.uniform(ceiling / 2, ceiling)

    def rate_limit_wait(self, told: float, attempt: int, rng: random.Random) -> float:
        floor = min(self.rate_limit_cap_s, self.rate_limit_floor_s * 2 ** (attempt - 1))
        return max(told, floor) * rng.uniform(1.0, 1.1)


@dataclass
class ClientStats:
    """What one client did: every request, the batch writes among them, and the waiting."""

    requests: int = 0
    write_calls: int = 0
    rate_limited: int = 0
    retries: int = 0
    waited_s: float = 0.0


@dataclass(frozen=True)
class BatchOutcome:
    """HubSpot's answer to one batch update, per record.

    `unconfirmed` are ids the answer neither returned nor named in an error: not accepted, so
    not confirmed, and sent again next run.
    """

    accepted: frozenset[str]
    rejected: dict[str, tuple[str, str]]  # id -> (category, message)
    unconfirmed: frozenset[str]
    correlation_id: str | None


@dataclass
class HubSpotClient:
    """HubSpot's CRM v3 API for writes, within a request budget and a retry policy."""

    settings: Settings
    limiter: RollingWindowLimiter | None = None
    session: requests.Session = field(default_factory=requests.Session)
    sleep: Callable[[float], None] = time.sleep
    policy: RetryPolicy | None = None
    stats: ClientStats = field(default_factory=ClientStats)

    def __post_init__(self) -> None:
        s = self.settings
        if self.limiter is None:
            account = s.base_url + "#" + hashlib.sha256(s.access_token.encode()).hexdigest()[:12]
            self.limiter = shared_limiter(account, s.rate_limit, s.rate_window_s)
        if self.policy is None:
            self.policy = RetryPolicy(max_retries=s.max_retries)
        self.session.headers.update({"Authorization": f"Bearer {s.access_token}",
                                     "Content-Type": "application/json"})
        self._rng = random.Random()

    # --- requests -------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json: Any = None, write: bool = False,
                idempotent: bool = True) -> requests.Response:
        """Send one request under the budget and the retry policy.

        Returns any 2xx, and any 4xx other than 401/403/429 for the caller to read. Raises
        `CredentialsRejected`, `DailyLimitReached`, or `CrmUnavailable` once retries run out.
        A request that is not `idempotent` (a create) is never resent blindly after a 5xx or a
        timeout, since HubSpot may have carried it out: `OutcomeUnknown` is raised at once, for
        the caller to find out what happened before it sends again. A 429 is always safe to resend.
        """
        url = f"{self.settings.base_url}{path}"
        transient = limited = 0
        while True:
            error: Exception | None = None
            response: requests.Response | None = None
            with self.limiter.slot():
                self.stats.requests += 1
                self.stats.write_calls += int(write)
                try:
                    response = self.session.request(method, url, json=json,
                                                    timeout=(5.0, self.settings.timeout_s))
                except (requests.Timeout, requests.ConnectionError) as exc:
                    error = exc
            if response is None:
                if not idempotent:
                    raise OutcomeUnknown(f"{method} {path}: {type(error).__name__}; HubSpot may or may not "
                                         f"have carried it out")
                transient += 1
                self._give_up_after(transient, f"{method} {path} failed {transient} times "
                                               f"({type(error).__name__}); is HubSpot reachable at "
                                               f"{self.settings.base_url}?")
                self.wait(self.policy.backoff(transient - 1, self._rng), type(error).__name__)
                continue
            status = response.status_code
            if status < 400:
                return response
            if status in (401, 403):
                raise CredentialsRejected(
                    f"HubSpot refused the token (HTTP {status}: {summary(response)}). Check {TOKEN_ENV} "
                    f"(a private app token with CRM object write and schema scopes).")
            if status == 429:
                body = _json(response)
                if isinstance(body, dict) and body.get("policyName") == "DAILY":
                    raise DailyLimitReached(f"HubSpot's daily limit is reached ({summary(response)}); "
                                            f"the rest stays pending for the next run")
                limited += 1
                self.stats.rate_limited += 1
                if limited > self.policy.max_rate_limit_waits:
                    raise CrmUnavailable(f"{method} {path}: still rate limited after {limited - 1} waits")
                told = _seconds(response.headers.get("Retry-After"))
                self.wait(self.policy.rate_limit_wait(told, limited, self._rng),
                           f"rate limited ({body.get('policyName') if isinstance(body, dict) else '?'})")
                continue
            if status >= 500:
                if not idempotent:
                    raise OutcomeUnknown(f"{method} {path} answered {status}: {summary(response)}")
                transient += 1
                self._give_up_after(transient, f"{method} {path} answered {status} {transient} times: "
                                               f"{summary(response)}")
                self.wait(self.policy.backoff(transient - 1, self._rng), f"server error {status}")
                continue
            return response

    def _give_up_after(self, transient: int, message: str) -> None:
        if transient > self.policy.max_retries:
            raise CrmUnavailable(message)

    def backoff(self, attempt: int) -> float:
        """The policy's jittered backoff before retry `attempt + 1`."""
        return self.policy.backoff(attempt, self._rng)

    def wait(self, seconds: float, why: str) -> None:
        """Sleep, counted in the stats and logged with its reason."""
        self.stats.retries += 1
        self.stats.waited_s += seconds
        logger.info("hubspot: %s; waiting %.2f s", why, seconds)
        self.sleep(seconds)

    def get_json(self, path: str) -> tuple[int, Any]:
        response = self.request("GET", path)
        return response.status_code, _json(response)

    def send_json(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        response = self.request(method, path, json=body)
        return response.status_code, _json(response)

    # --- batch update ---------------------------------------------------------------------

    def batch_update(self, object_type: str, inputs: list[dict[str, Any]]) -> BatchOutcome:
        """`POST /crm/v3/objects/{type}/batch/update` with ≤ 100 `{id, properties}` inputs.

        200 and 207 become per-record outcomes; a 4xx for the whole batch raises `BatchRejected`.
        """
        response = self.request("POST", f"/crm/v3/objects/{object_type}/batch/update",
                                json={"inputs": inputs}, write=True)
        body = _json(response)
        correlation = response.headers.get("X-HubSpot-Correlation-Id") or (
            body.get("correlationId") if isinstance(body, dict) else None)
        if response.status_code >= 400:
            category = body.get("category", "UNKNOWN") if isinstance(body, dict) else "UNKNOWN"
            raise BatchRejected(response.status_code, str(category), summary(response))
        sent = [str(item["id"]) for item in inputs]
        returned = {str(r.get("id")) for r in (body.get("results") or [])} if isinstance(body, dict) else set()
        rejected: dict[str, tuple[str, str]] = {}
        for error in (body.get("errors") or []) if isinstance(body, dict) else []:
            context = error.get("context") or {}
            ids = context.get("ids") or context.get("id") or []
            for record_id in ([ids] if isinstance(ids, str) else ids):
                rejected[str(record_id)] = (str(error.get("category") or "UNKNOWN"),
                                            str(error.get("message") or "")[:MESSAGE_MAX])
        accepted = frozenset(i for i in sent if i in returned and i not in rejected)
        rejected = {i: rejected[i] for i in sent if i in rejected}
        unconfirmed = frozenset(i for i in sent if i not in accepted and i not in rejected)
        return BatchOutcome(accepted, rejected, unconfirmed, correlation)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:MESSAGE_MAX]


def _seconds(raw: str | None) -> float:
    try:
        return max(0.0, float(raw or 0))
    except ValueError:
        return 0.0


def summary(response: requests.Response) -> str:
    """HubSpot's message (and correlation id) for an error answer, short enough to store."""
    body = _json(response)
    if isinstance(body, dict):
        text = str(body.get("message") or body)
        if body.get("correlationId"):
            text += f" (correlationId {body['correlationId']})"
        return text[:MESSAGE_MAX]
    return str(body)[:MESSAGE_MAX]
