"""The HTTP client every API source uses: one session, the vendors' limits waited out,
transient faults retried a bounded number of times, credentials problems reported at once.

Why not dlt's `requests` helper: its retry policy is global configuration, and we need three
different behaviours that tests pin down — a 429 honours `Retry-After` but never spins (a
`Retry-After: 0` still waits), a 5xx or timeout backs off with jitter and gives up after a
few attempts, and a 401/403 stops immediately with a message naming the system and the
setting to fix.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterator, Mapping, TypeVar
from urllib.parse import urlsplit

import requests

logger = logging.getLogger("concord.ingestion")


class SourceError(RuntimeError):
    """A load cannot go on; the message says which system and what to do."""


class CredentialsRejected(SourceError):
    pass


class ApiRequestFailed(SourceError):
    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class RetryPolicy:
    """How hard to try. Rate limits are expected and waited out patiently; server faults and
    timeouts are retried `max_transient` times with exponential backoff and full jitter."""

    max_transient: int = 5
    max_rate_limited: int = 30
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    min_rate_limit_wait_s: float = 0.25
    max_retry_after_s: float = 120.0  # a vendor asking for longer is waited this long, then asked again
    timeout: tuple[float, float] = (5.0, 60.0)

    def backoff(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** attempt)
        return rng.uniform(ceiling / 2, ceiling)


@dataclass
class RequestStats:
    requests: int = 0
    rate_limited: int = 0
    retried: int = 0
    waited_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "rate_limited": self.rate_limited, "retried": self.retried,
                "waited_s": round(self.waited_s, 3)}


@dataclass
class ApiClient:
    """A vendor API: base URL, auth headers, and which settings to blame when it refuses us.

    Args:
        system: `hubspot`, `stripe` or `harvest`, for messages and logs.
        base_url: where the API lives (the sandbox or the vendor).
        headers: sent with every request (auth, account, user agent).
        credentials_hint: the settings an operator should check on 401/403.
    """

    system: str
    base_url: str
    headers: Mapping[str, str]
    credentials_hint: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)
    stats: RequestStats = field(default_factory=RequestStats)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session.headers.update(self.headers)
        self._rng = random.Random()

    def url(self, path_or_url: str) -> str:
        """A path under the base URL, or an absolute URL a response named (a next link) on the
        base URL's own scheme, host and port: the session's credentials go nowhere else."""
        if not path_or_url.startswith(("http://", "https://")):
            return f"{self.base_url}{path_or_url}"
        if _origin(path_or_url) != _origin(self.base_url):
            raise ApiRequestFailed(
                f"{self.system}: a response sent us to {_origin(path_or_url)}, not the API at "
                f"{_origin(self.base_url)}; refusing to send the credentials there (is a proxy or the "
                f"vendor's answer tampered with?)")
        return path_or_url

    def get(self, path_or_url: str, params: Any = None) -> Any:
        return self.request("GET", path_or_url, params=params).json()

    def post(self, path_or_url: str, json: Any = None, data: Any = None) -> Any:
        return self.request("POST", path_or_url, json=json, data=data).json()

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        url = self.url(path_or_url)
        transient = rate_limited = 0
        while True:
            self.stats.requests += 1
            try:
                response = self.session.request(method, url, timeout=self.policy.timeout, **kwargs)
            except (requests.Timeout, requests.ConnectionError) as exc:
                transient += 1
                if transient > self.policy.max_transient:
                    raise ApiRequestFailed(
                        f"{self.system}: {method} {url} failed {transient} times ({type(exc).__name__}); "
                        f"is the API reachable at {self.base_url}?") from exc
                self._wait(self.policy.backoff(transient - 1, self._rng), f"{type(exc).__name__}")
                continue
            status = response.status_code
            if status < 400:
                return response
            if status in (401, 403):
                raise CredentialsRejected(
                    f"{self.system}: the API refused our credentials (HTTP {status}: {_summary(response)}). "
                    f"Check {self.credentials_hint}.")
            if status == 429:
                rate_limited += 1
                self.stats.rate_limited += 1
                if rate_limited > self.policy.max_rate_limited:
                    raise ApiRequestFailed(f"{self.system}: still rate limited after {rate_limited - 1} waits "
                                           f"on {method} {url}", status, _body(response))
                self._wait(self._retry_after(response, rate_limited), "rate limited (429)")
                continue
            if status >= 500:
                transient += 1
                if transient > self.policy.max_transient:
                    raise ApiRequestFailed(f"{self.system}: {method} {url} answered {status} "
                                           f"{transient} times: {_summary(response)}", status, _body(response))
                self._wait(self.policy.backoff(transient - 1, self._rng), f"server error {status}")
                continue
            raise ApiRequestFailed(f"{self.system}: {method} {url} answered {status}: {_summary(response)}",
                                   status, _body(response))

    def _retry_after(self, response: requests.Response, attempt: int) -> float:
        """The vendor's Retry-After, but never less than a growing floor: a `Retry-After: 0` from
        a server that is still overloaded must not turn into a tight loop."""
        floor = min(self.policy.backoff_cap_s, self.policy.min_rate_limit_wait_s * 2 ** (attempt - 1))
        try:
            told = float(response.headers.get("Retry-After", ""))
        except ValueError:
            told = 0.0
        if not math.isfinite(told):  # `nan`, `inf`: no answer at all
            told = 0.0
        told = min(told, self.policy.max_retry_after_s)
        return max(told, floor) * self._rng.uniform(1.0, 1.1)  # jitter: clients that hit the limit together part

    def _wait(self, seconds: float, why: str) -> None:
        self.stats.retried += 1
        self.stats.waited_s += seconds
        logger.info("%s: %s; waiting %.2f s", self.system, why, seconds)
        self.sleep(seconds)


class Cursors:
    """The cursors one list walk has followed, so a vendor that hands back a cursor it already
    gave (or pages past any sensible end) stops the walk with an error instead of looping while
    the warehouse is locked and the disk fills."""

    def __init__(self, system: str, endpoint: str, max_pages: int = 1_000_000):
        self.system, self.endpoint, self.max_pages = system, endpoint, max_pages
        self._seen: set[Hashable] = set()

    def follow(self, cursor: Hashable) -> None:
        if cursor in self._seen:
            raise ApiRequestFailed(f"{self.system}: {self.endpoint} handed back a page cursor it already gave "
                                   f"({str(cursor)[:80]}); stopping the walk instead of looping")
        if len(self._seen) >= self.max_pages:
            raise ApiRequestFailed(f"{self.system}: {self.endpoint} is still paging after {self.max_pages:,} "
                                   f"pages; stopping the walk")
        self._seen.add(cursor)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def _body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


def _summary(response: requests.Response) -> str:
    body = _body(response)
    if isinstance(body, dict):
        for key in ("message", "error_description"):
            if isinstance(body.get(key), str):
                return body[key][:300]
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:300]
        if isinstance(error, str):
            return error[:300]
    return str(body)[:300]


T = TypeVar("T")
_DONE = object()


def prefetched(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """`pages`, fetched on a background thread up to `depth` ahead.

    Paging is sequential by nature (each page names the next), so without this the source
    alternates between waiting for the server and processing a page; with it, the next page
    is on its way while this one is turned into rows. Errors surface where the page would have.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        buffer.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            buffer.put(exc)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
