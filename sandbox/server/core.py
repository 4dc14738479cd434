"""The HTTP machinery the three vendor APIs share: requests, routing, rate limits, fault mode.

One `ThreadingHTTPServer` on loopback serves every vendor under its own base path
(`/hubspot`, `/stripe`, `/harvest`); `/_sandbox` answers health and settings. Each vendor is
a `VendorApp`: its routes, its authentication and its error body. Responses are JSON bytes,
usually rendered by SQLite or stored pre-rendered, so serving a page costs little Python.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import random
import re
import sqlite3
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

import orjson

from sandbox import store

JSON = "application/json; charset=utf-8"


class ApiError(Exception):
    """Raised by a handler; the vendor app turns it into that vendor's error body."""

    def __init__(self, status: int, message: str, **fields: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields


@dataclasses.dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str = JSON


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return Response(status, body, headers or {})


@dataclasses.dataclass
class Request:
    method: str
    path: str  # below the vendor's base path, e.g. /crm/v3/objects/companies
    query: list[tuple[str, str]]
    headers: Any  # http.client.HTTPMessage: case-insensitive get()
    body: bytes
    base_url: str  # e.g. http://127.0.0.1:8765/hubspot
    db: sqlite3.Connection
    params: dict[str, str] = dataclasses.field(default_factory=dict)  # from the route pattern

    def arg(self, name: str, default: str | None = None) -> str | None:
        """Last value of a query parameter."""
        value = default
        for key, item in self.query:
            if key == name:
                value = item
        return value

    def args(self, name: str) -> list[str]:
        return [item for key, item in self.query if key == name]

    def json(self) -> Any:
        if not self.body:
            raise ApiError(400, "request body is empty; expected JSON")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}") from None

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)

    def bearer_token(self) -> str | None:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


Handler = Callable[[Request], Response]


class VendorApp:
    """One vendor's API: routes, authentication, error shape and rate-limit policy."""

    name: str = ""
    prefix: str = ""

    def __init__(self, data_dir: Path, credentials: dict[str, str]):
        self.data_dir = data_dir
        self.credentials = credentials
        self.settings: ServerSettings | None = None  # the server's live settings, set when it mounts the app
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.register()

    def register(self) -> None:
        raise NotImplementedError

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        self.routes.append((method, regex, handler))

    def resolve(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """The handler for a path, its path parameters, and whether the path exists at all."""
        path_known = False
        for route_method, regex, handler in self.routes:
            match = regex.match(path)
            if match:
                path_known = True
                if route_method == method:
                    return handler, match.groupdict(), True
        return None, {}, path_known

    def authenticate(self, request: Request) -> Response | None:
        """None when the request may proceed, else the vendor's 401/400."""
        raise NotImplementedError

    def error(self, status: int, message: str, **fields: Any) -> Response:
        raise NotImplementedError

    def rate_policies(self, request: Request) -> list[RatePolicy]:
        """The burst limits enforced while the server's `rate_limits` setting is on."""
        return []

    def quota_policies(self, request: Request) -> list[RatePolicy]:
        """Quotas enforced whenever configured, whatever `rate_limits` says (e.g. a daily cap)."""
        return []

    def rate_limited(self, policy: RatePolicy, retry_after: int) -> Response:
        raise NotImplementedError

    def rate_headers(self, policy: RatePolicy, remaining: int) -> dict[str, str]:
        return {}


@dataclasses.dataclass(frozen=True)
class RatePolicy:
    """`limit` requests per `window_s` seconds per token, as the vendor publishes it."""

    name: str
    limit: int
    window_s: float


class RateLimiter:
    """Rolling-window request counting per (vendor, policy, token)."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, str, str], collections.deque[float]] = collections.defaultdict(
            collections.deque
        )
        self._lock = threading.Lock()

    def reset(self, vendor: str, policy_name: str) -> None:
        """Forget the counted requests of one policy (a changed limit counts afresh)."""
        with self._lock:
            for key in [k for k in self._hits if k[0] == vendor and k[1] == policy_name]:
                del self._hits[key]

    def check(self, vendor: str, policy: RatePolicy, token: str) -> tuple[bool, int, int]:
        """Count a request: (allowed, remaining, seconds until a slot frees)."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits[(vendor, policy.name, token)]
            while hits and hits[0] <= now - policy.window_s:
                hits.popleft()
            if len(hits) >= policy.limit:
                wait = hits[0] + policy.window_s - now
                return False, 0, max(1, math.ceil(wait))
            hits.append(now)
            return True, policy.limit - len(hits), 0


@dataclasses.dataclass
class FaultSettings:
    """Unreliability on demand, for reliability tests.

    `error_rate` of requests get a 5xx in the vendor's shape; `slow_rate` are delayed by
    `slow_ms` before being served; `storm_rate` of requests start a 429 storm: that request
    and the next `storm_length - 1` to the same vendor answer 429 with `Retry-After:
    retry_after` (which may be 0, as real vendors sometimes send). `reject_rate` of the inputs of
    a batch write are rejected inside a 207 (HubSpot batch update); which ones is decided per
    seed and record, so the same records are rejected on every attempt until the rate changes.
    """

    error_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: int = 2000
    storm_rate: float = 0.0
    storm_length: int = 5
    retry_after: int = 1
    reject_rate: float = 0.0
    seed: int = 0

    @property
    def active(self) -> bool:
        return self.error_rate > 0 or self.slow_rate > 0 or self.storm_rate > 0

    def rejects(self, key: str) -> bool:
        """Whether fault mode rejects the batch-write input `key` (e.g. `companies:123`)."""
        if self.reject_rate <= 0:
            return False
        digest = hashlib.blake2b(f"{self.seed}:{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.reject_rate

    @classmethod
    def parse(cls, spec: str) -> FaultSettings:
        """From `error=0.05,slow=0.02,slow_ms=1500,storm=0.01,storm_length=5,retry_after=0,reject=0.1`."""
        aliases = {"error": "error_rate", "slow": "slow_rate", "storm": "storm_rate", "reject": "reject_rate"}
        fields = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, sep, raw = part.partition("=")
            key = aliases.get(key.strip(), key.strip())
            if not sep or key not in fields:
                raise ValueError(f"unknown fault setting {part!r}; known: {', '.join(fields)}")
            values[key] = float(raw) if key.endswith("_rate") else int(raw)
        return cls(**values)


@dataclasses.dataclass
class ServerSettings:
    rate_limits: bool = False
    hubspot_tier: str = "professional"  # professional: 190 / 10 s; starter: 100 / 10 s
    hubspot_daily_limit: int = 0  # requests per rolling day (HubSpot's DAILY policy); 0: no cap
    faults: FaultSettings = dataclasses.field(default_factory=FaultSettings)
    access_log: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def update(self, payload: dict[str, Any]) -> None:
        for key, value in payload.items():
            if key == "faults":
                self.faults = FaultSettings(**{**dataclasses.asdict(self.faults), **value})
            elif key in {"rate_limits", "hubspot_tier", "hubspot_daily_limit", "access_log"}:
                setattr(self, key, value)
            else:
                raise ApiError(400, f"unknown setting {key!r}")


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(0)
        self._seed: int | None = None
        self._storm_left: dict[str, int] = collections.defaultdict(int)

    def decide(self, vendor: str, settings: FaultSettings) -> str | None:
        """'storm', 'error', 'slow' or None for one request."""
        if not settings.active:
            return None
        with self._lock:
            if self._seed != settings.seed:
                self._rng.seed(settings.seed)
                self._seed = settings.seed
            if self._storm_left[vendor] > 0:
                self._storm_left[vendor] -= 1
                return "storm"
            draw = self._rng.random()
            if draw < settings.storm_rate:
                self._storm_left[vendor] = max(0, settings.storm_length - 1)
                return "storm"
            draw -= settings.storm_rate
            if draw < settings.error_rate:
                return "error"
            draw -= settings.error_rate
            if draw < settings.slow_rate:
                return "slow"
            return None


class RequestCounter:
    """Requests served per system and route, so tests can see how many calls a load needed,
    and when each arrived (the latest `LOG_SIZE`), so they can check a client's pacing."""

    LOG_SIZE = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._log: collections.deque[tuple[float, str, str]] = collections.deque(maxlen=self.LOG_SIZE)

    def count(self, system: str, route: str) -> None:
        with self._lock:
            self._counts[(system, route)] += 1
            self._log.append((time.time(), system, route))

    def log(self) -> list[dict[str, Any]]:
        """Arrivals, oldest first: `{t: epoch seconds, system, route}`."""
        with self._lock:
            return [{"t": t, "system": system, "route": route} for t, system, route in self._log]

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (system, route), n in sorted(self._counts.items()):
                out.setdefault(system, {})[route] = n
            return out

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._log.clear()


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, data_dir: Path, apps: list[VendorApp], host: str, port: int,
                 settings: ServerSettings):
        self.data_dir = Path(data_dir)
        self.apps = {app.prefix: app for app in apps}
        self.settings = settings
        for app in apps:
            app.settings = settings
        self.limiter = RateLimiter()
        self.faults = FaultInjector()
        self.requests = RequestCounter()
        self._local = threading.local()
        super().__init__((host, port), RequestHandler)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def db(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = store.connect(self.data_dir)
            self._local.con = con
        return con


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms each.
    disable_nagle_algorithm = True
    server: SandboxServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.settings.access_log:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        first, _, rest = split.path.lstrip("/").partition("/")
        try:
            if first == "_sandbox":
                response = self._admin("/" + rest, body)
            elif first in self.server.apps:
                response = self._vendor(self.server.apps[first], "/" + rest, split.query, body)
            else:
                response = json_response(404, {"error": f"no sandbox system at /{first}; "
                                                        f"known: {sorted(self.server.apps)}"})
        except Exception:  # noqa: BLE001 - the server must answer, whatever a handler did
            traceback.print_exc()
            response = json_response(500, {"error": "sandbox internal error"})
        try:
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (a timeout, as fault mode's slow responses provoke)
        if self.server.settings.access_log:
            elapsed = (time.perf_counter() - started) * 1000
            sys.stderr.write(f"{self.command} {self.path} {response.status} {elapsed:.1f}ms\n")

    def _vendor(self, app: VendorApp, path: str, query: str, body: bytes) -> Response:
        request = Request(
            method=self.command,
            path=path,
            query=parse_qsl(query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            base_url=f"http://{self.headers.get('Host') or self._host()}/{app.prefix}",
            db=self.server.db(),
        )
        self.server.requests.count(app.name, f"{self.command} {path}")
        denied = app.authenticate(request)
        if denied is not None:
            return denied
        settings = self.server.settings
        fault = self.server.faults.decide(app.name, settings.faults)
        if fault == "storm":
            return app.rate_limited(RatePolicy("FAULT_STORM", 0, 1), settings.faults.retry_after)
        if fault == "error":
            status = random.choice((500, 502, 503))
            return app.error(status, "The server encountered a temporary error (sandbox fault mode).")
        if fault == "slow":
            time.sleep(settings.faults.slow_ms / 1000)
        extra_headers: dict[str, str] = {}
        policies = app.quota_policies(request)
        if settings.rate_limits:
            policies = app.rate_policies(request) + policies
        token = request.bearer_token() or "anonymous"
        for policy in policies:
            allowed, remaining, wait = self.server.limiter.check(app.name, policy, token)
            if not allowed:
                return app.rate_limited(policy, wait)
            extra_headers.update(app.rate_headers(policy, remaining))
        handler, params, path_known = app.resolve(self.command, path)
        if handler is None:
            if path_known:
                return app.error(405, f"{self.command} is not allowed on {path}")
            return app.error(404, f"Unable to find a route for {self.command} {path}")
        request.params = params
        try:
            response = handler(request)
        except ApiError as exc:
            response = app.error(exc.status, exc.message, **exc.fields)
        response.headers = {**extra_headers, **response.headers}
        return response

    def _admin(self, path: str, body: bytes) -> Response:
        settings = self.server.settings
        if path == "/health" and self.command == "GET":
            clock = store.Clock(self.server.db())
            return json_response(200, {"status": "ok", "now_ms": clock.now_ms,
                                       "systems": sorted(self.server.apps)})
        if path == "/stats" and self.command == "GET":
            return json_response(200, self.server.requests.snapshot())
        if path == "/stats" and self.command == "DELETE":
            self.server.requests.reset()
            return json_response(200, {})
        if path == "/requests" and self.command == "GET":
            return json_response(200, {"requests": self.server.requests.log()})
        if path == "/settings" and self.command == "GET":
            return json_response(200, settings.to_json())
        if path == "/settings" and self.command in {"PUT", "PATCH", "POST"}:
            try:
                payload = orjson.loads(body or b"{}")
                settings.update(payload)
                if isinstance(payload, dict) and "hubspot_daily_limit" in payload:
                    self.server.limiter.reset("hubspot", "DAILY")
            except ApiError as exc:
                return json_response(400, {"error": exc.message})
            except (TypeError, orjson.JSONDecodeError) as exc:
                return json_response(400, {"error": str(exc)})
            return json_response(200, settings.to_json())
        return json_response(404, {"error": f"no sandbox admin route {self.command} {path}"})

    def _host(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


def correlation_id() -> str:
    return str(uuid.uuid4())


def write_transaction(con: sqlite3.Connection):
    """`with write_transaction(con):` — an immediate (writer-locked) transaction."""
    return _WriteTransaction(con)


class _WriteTransaction:
    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")
