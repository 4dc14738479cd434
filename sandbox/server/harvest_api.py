"""Harvest API v2, served from the sandbox state (`hv_*` tables).

Base URL for clients: `http://127.0.0.1:PORT/harvest/v2`, mirroring `https://api.harvestapp.com/v2`.

What it reproduces, from Harvest's public documentation:
- Auth: `Authorization: Bearer <token>` + `Harvest-Account-Id`, or the `access_token` /
  `account_id` query parameters; a `User-Agent` is required (400 without it). A bad or missing
  token or account answers 401 `{"error": "invalid_token", "error_description": ...}`.
- Lists: `{<plural>: [...], per_page, total_pages, total_entries, next_page, previous_page, page,
  links: {first, next, previous, last}}`, `per_page` 1..2000 (default 2000), `page` (offset
  paging) and `cursor` (keyset paging). `links.next` always carries a cursor and repeats the
  request's filters; on cursor pages `page`, `next_page` and `previous_page` are null except on
  the first and last page. Lists are newest-created first; time entries and expenses by
  `spent_date`, newest first; `id` breaks ties so a cursor position is exact.
- Objects are rendered by SQLite (`json_object` over joins), so serving a 2000-record page costs
  one query and a string join, not a Python loop over records.
- Writes: create, update and delete time entries; locked (approved or invoiced) entries refuse
  edits. Outside the API, `POST /harvest/web/time_entries/{mark_invoiced,reopen,approve}` do what
  the web app does when someone marks entries invoiced by hand, reopens approved entries for a
  correction, or approves them. Stamps come from the sandbox clock, never the wall clock. Each write is recorded as a
  fact (`sandbox.facts.harvest`), so `advance` keeps it.
- Errors: 404 `{"status": 404, "error": "Not Found"}`, 422 `{"message": ...}`, 429 with
  `Retry-After` (seconds) when the 100-requests-per-15-s limit is on.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hmac
import math
import re
import sqlite3
from typing import Any, Callable
from urllib.parse import urlencode

import orjson

from sandbox import facts, store
from sandbox.project.harvest import LOCKED_APPROVED, LOCKED_INVOICED
from sandbox.server.core import (
    ApiError,
    RatePolicy,
    Request,
    Response,
    VendorApp,
    json_response,
    write_transaction,
)

MAX_PER_PAGE = 2000
SINCE_SQL = "{alias}.updated_at >= ?"  # updated_since is inclusive: a change in the same second is kept
SORT_MATCHES_UP_TO = 20_000  # filtered lists this small are sorted, larger ones walk the sort index
FIRST_API_TIME_ENTRY_ID = 9_000_000_000  # above every generated id, so API writes never collide
INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid "
                         "for other reasons.",
}
MISSING_USER_AGENT = (
    "Missing User-Agent header. Include the name of your application and a link to it or an "
    "email address, e.g. 'User-Agent: MyApp (yourname@example.com)'."
)
REASONS = {
    400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable",
}
COMPANY_DEFAULTS: dict[str, Any] = {
    "base_uri": "https://concord-sandbox.harvestapp.com",
    "full_domain": "concord-sandbox.harvestapp.com",
    "name": "Concord Sandbox",
    "is_active": True,
    "week_start_day": "Monday",
    "wants_timestamp_timers": False,
    "time_format": "decimal",
    "date_format": "%Y-%m-%d",
    "plan_type": "simple-v4",
    "clock": "24h",
    "currency_code_display": "iso_code_before",
    "currency_symbol_display": "symbol_before",
    "decimal_symbol": ".",
    "thousands_separator": ",",
    "color_scheme": "orange",
    "weekly_capacity": 144000,
    "expense_feature": True,
    "invoice_feature": False,  # the firm invoices in Stripe
    "estimate_feature": False,
    "approval_feature": True,
    "team_feature": True,
}


# --- SQL rendering helpers ----------------------------------------------------------------------

def _b(expr: str) -> str:
    """A 0/1 column as a JSON boolean."""
    return f"CASE WHEN {expr} THEN json('true') ELSE json('false') END"


def _ts(expr: str) -> str:
    """Epoch seconds as ISO 8601 UTC, e.g. 2026-11-01T00:00:00Z (cheaper than strftime)."""
    return f"replace(datetime({expr}, 'unixepoch'), ' ', 'T') || 'Z'"


def _name(user: str) -> str:
    return f"{user}.first_name || ' ' || {user}.last_name"


def _json_list(expr: str) -> str:
    """A TEXT column holding a JSON array (or, leniently, one bare value) as a JSON array."""
    return (f"CASE WHEN json_valid({expr}) THEN json({expr}) "
            f"WHEN {expr} = '' THEN json('[]') ELSE json_array({expr}) END")


def _obj(*pairs: tuple[str, str]) -> str:
    return "json_object(" + ", ".join(f"'{key}', {expr}" for key, expr in pairs) + ")"


def _stamps(alias: str) -> tuple[tuple[str, str], ...]:
    return (("created_at", _ts(f"{alias}.created_at")), ("updated_at", _ts(f"{alias}.updated_at")))


def _embedded_user_assignment(ua: str, id_expr: str) -> str:
    """The user assignment as Harvest embeds it in time entries and expenses."""
    return _obj(("id", id_expr), ("is_project_manager", _b(f"{ua}.is_project_manager")),
                ("is_active", _b(f"{ua}.is_active")), ("use_default_rates", _b(f"{ua}.use_default_rates")),
                ("budget", f"{ua}.budget"), *_stamps(ua), ("hourly_rate", f"{ua}.hourly_rate"))


def _embedded_task_assignment(ta: str, id_expr: str) -> str:
    return _obj(("id", id_expr), ("billable", _b(f"{ta}.billable")), ("is_active", _b(f"{ta}.is_active")),
                *_stamps(ta), ("hourly_rate", f"{ta}.hourly_rate"), ("budget", f"{ta}.budget"))


def _client_ref(alias: str, id_expr: str) -> str:
    return _obj(("id", id_expr), ("name", f"{alias}.name"), ("currency", f"{alias}.currency"))


def _project_ref(alias: str, id_expr: str) -> str:
    return _obj(("id", id_expr), ("name", f"{alias}.name"), ("code", f"{alias}.code"))


def _user_ref(alias: str, id_expr: str) -> str:
    return _obj(("id", id_expr), ("name", _name(alias)))


def _task_ref(alias: str, id_expr: str) -> str:
    return _obj(("id", id_expr), ("name", f"{alias}.name"))


# --- resources ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Filter:
    """A list query parameter and the condition it adds.

    kind: `int` and `bool` compare `column`; `from`/`to` bound `spent_date`; `since` bounds
    `updated_at` (inclusive); `never` matches nothing when given (features the sandbox lacks).
    """

    param: str
    kind: str
    column: str = ""


@dataclasses.dataclass(frozen=True)
class Resource:
    """One Harvest object type: where it lives, how it renders, how its lists sort and filter."""

    plural: str
    table: str
    alias: str
    render: str  # SQL expression producing the object's JSON text
    joins: str = ""
    order: tuple[str, ...] = ("created_at", "id")  # all descending; the last column is unique
    filters: tuple[Filter, ...] = ()

    @property
    def source(self) -> str:
        return f"{self.table} {self.alias} {self.joins}"


SINCE = Filter("updated_since", "since")
IS_ACTIVE = Filter("is_active", "bool", "is_active")

CLIENTS = Resource(
    "clients", "hv_clients", "c",
    _obj(("id", "c.id"), ("name", "c.name"), ("is_active", _b("c.is_active")), ("address", "c.address"),
         ("statement_key", "c.statement_key"), ("currency", "c.currency"), *_stamps("c")),
    filters=(IS_ACTIVE, SINCE),
)

USERS = Resource(
    "users", "hv_users", "u",
    _obj(("id", "u.id"), ("first_name", "u.first_name"), ("last_name", "u.last_name"),
         ("email", "u.email"), ("telephone", "u.telephone"), ("timezone", "u.timezone"),
         ("has_access_to_all_future_projects", "json('false')"),
         ("is_contractor", _b("u.is_contractor")), ("is_active", _b("u.is_active")),
         ("weekly_capacity", "u.weekly_capacity"), ("default_hourly_rate", "u.default_hourly_rate"),
         ("cost_rate", "u.cost_rate"), ("roles", _json_list("u.roles")),
         ("access_roles", _json_list("u.access_roles")),
         ("avatar_url", "'https://cache.harvestapp.com/assets/profile_images/user_' || u.id || '.png'"),
         *_stamps("u")),
    filters=(IS_ACTIVE, SINCE),
)

TASKS = Resource(
    "tasks", "hv_tasks", "t",
    _obj(("id", "t.id"), ("name", "t.name"), ("billable_by_default", _b("t.billable_by_default")),
         ("default_hourly_rate", "t.default_hourly_rate"), ("is_default", _b("t.is_default")),
         ("is_active", _b("t.is_active")), *_stamps("t")),
    filters=(IS_ACTIVE, SINCE),
)

PROJECTS = Resource(
    "projects", "hv_projects", "p",
    _obj(("id", "p.id"), ("name", "p.name"), ("code", "p.code"), ("is_active", _b("p.is_active")),
         ("is_billable", _b("p.is_billable")), ("is_fixed_fee", _b("p.is_fixed_fee")),
         ("bill_by", "p.bill_by"), ("hourly_rate", "p.hourly_rate"), ("budget", "p.budget"),
         ("budget_by", "p.budget_by"), ("budget_is_monthly", _b("p.budget_is_monthly")),
         ("notify_when_over_budget", _b("p.notify_when_over_budget")),
         ("over_budget_notification_percentage", "p.over_budget_notification_percentage"),
         ("over_budget_notification_date", "NULL"),
         ("show_budget_to_all", _b("p.show_budget_to_all")), ("cost_budget", "p.cost_budget"),
         ("cost_budget_include_expenses", _b("p.cost_budget_include_expenses")), ("fee", "p.fee"),
         ("notes", "p.notes"), ("starts_on", "p.starts_on"), ("ends_on", "p.ends_on"),
         *_stamps("p"), ("client", _client_ref("c", "p.client_id"))),
    joins="LEFT JOIN hv_clients c ON c.id = p.client_id",
    filters=(IS_ACTIVE, Filter("client_id", "int", "client_id"), SINCE),
)

USER_ASSIGNMENTS = Resource(
    "user_assignments", "hv_user_assignments", "ua",
    _obj(("id", "ua.id"), ("is_project_manager", _b("ua.is_project_manager")),
         ("is_active", _b("ua.is_active")), ("use_default_rates", _b("ua.use_default_rates")),
         ("budget", "ua.budget"), *_stamps("ua"), ("hourly_rate", "ua.hourly_rate"),
         ("project", _project_ref("p", "ua.project_id")), ("user", _user_ref("u", "ua.user_id"))),
    joins="LEFT JOIN hv_projects p ON p.id = ua.project_id LEFT JOIN hv_users u ON u.id = ua.user_id",
    filters=(Filter("user_id", "int", "user_id"), IS_ACTIVE, SINCE),
)

TASK_ASSIGNMENTS = Resource(
    "task_assignments", "hv_task_assignments", "ta",
    _obj(("id", "ta.id"), ("billable", _b("ta.billable")), ("is_active", _b("ta.is_active")),
         *_stamps("ta"), ("hourly_rate", "ta.hourly_rate"), ("budget", "ta.budget"),
         ("project", _project_ref("p", "ta.project_id")), ("task", _task_ref("t", "ta.task_id"))),
    joins="LEFT JOIN hv_projects p ON p.id = ta.project_id LEFT JOIN hv_tasks t ON t.id = ta.task_id",
    filters=(IS_ACTIVE, SINCE),
)

TIME_ENTRIES = Resource(
    "time_entries", "hv_time_entries", "te",
    _obj(("id", "te.id"), ("spent_date", "te.spent_date"), ("user", _user_ref("u", "te.user_id")),
         ("client", _client_ref("c", "te.client_id")), ("project", _project_ref("p", "te.project_id")),
         ("task", _task_ref("t", "te.task_id")),
         ("user_assignment", _embedded_user_assignment("ua", "te.user_assignment_id")),
         ("task_assignment", _embedded_task_assignment("ta", "te.task_assignment_id")),
         ("hours", "te.hours"), ("hours_without_timer", "te.hours"), ("rounded_hours", "te.hours"),
         ("notes", "te.notes"), *_stamps("te"), ("is_locked", _b("te.is_locked")),
         ("locked_reason", "te.locked_reason"), ("is_closed", _b("te.is_closed")),
         ("is_billed", _b("te.is_billed")), ("timer_started_at", "NULL"), ("started_time", "NULL"),
         ("ended_time", "NULL"), ("is_running", "json('false')"), ("invoice", "NULL"),
         ("external_reference", "NULL"), ("billable", _b("te.billable")),
         ("budgeted", _b("te.budgeted")), ("billable_rate", "te.billable_rate"),
         ("cost_rate", "te.cost_rate")),
    joins=("LEFT JOIN hv_users u ON u.id = te.user_id "
           "LEFT JOIN hv_clients c ON c.id = te.client_id "
           "LEFT JOIN hv_projects p ON p.id = te.project_id "
           "LEFT JOIN hv_tasks t ON t.id = te.task_id "
           "LEFT JOIN hv_user_assignments ua ON ua.id = te.user_assignment_id "
           "LEFT JOIN hv_task_assignments ta ON ta.id = te.task_assignment_id"),
    order=("spent_date", "id"),
    filters=(Filter("user_id", "int", "user_id"), Filter("client_id", "int", "client_id"),
             Filter("project_id", "int", "project_id"), Filter("task_id", "int", "task_id"),
             Filter("external_reference_id", "never"), Filter("is_billed", "bool", "is_billed"),
             Filter("is_running", "running"), SINCE, Filter("from", "from"), Filter("to", "to")),
)

EXPENSE_CATEGORIES = Resource(
    "expense_categories", "hv_expense_categories", "ec",
    _obj(("id", "ec.id"), ("name", "ec.name"), ("unit_name", "ec.unit_name"),
         ("unit_price", "ec.unit_price"), ("is_active", _b("ec.is_active")), *_stamps("ec")),
    filters=(IS_ACTIVE, SINCE),
)

EXPENSES = Resource(
    "expenses", "hv_expenses", "e",
    _obj(("id", "e.id"), ("notes", "e.notes"), ("total_cost", "e.total_cost"),
         ("units", "CASE WHEN e.units = CAST(e.units AS INTEGER) THEN CAST(e.units AS INTEGER) "
                   "ELSE e.units END"),
         ("is_closed", _b("e.is_closed")), ("is_locked", _b("e.is_locked")),
         ("is_billed", _b("e.is_billed")), ("locked_reason", "e.locked_reason"),
         ("spent_date", "e.spent_date"), *_stamps("e"), ("billable", _b("e.billable")),
         ("receipt", "NULL"), ("user", _user_ref("u", "e.user_id")),
         ("user_assignment", _embedded_user_assignment("ua", "e.user_assignment_id")),
         ("project", _project_ref("p", "e.project_id")),
         ("expense_category", _obj(("id", "e.expense_category_id"), ("name", "ec.name"),
                                   ("unit_price", "ec.unit_price"), ("unit_name", "ec.unit_name"))),
         ("client", _client_ref("c", "e.client_id")), ("invoice", "NULL")),
    joins=("LEFT JOIN hv_users u ON u.id = e.user_id "
           "LEFT JOIN hv_clients c ON c.id = e.client_id "
           "LEFT JOIN hv_projects p ON p.id = e.project_id "
           "LEFT JOIN hv_user_assignments ua ON ua.id = e.user_assignment_id "
           "LEFT JOIN hv_expense_categories ec ON ec.id = e.expense_category_id"),
    order=("spent_date", "id"),
    filters=(Filter("user_id", "int", "user_id"), Filter("client_id", "int", "client_id"),
             Filter("project_id", "int", "project_id"), Filter("is_billed", "bool", "is_billed"),
             SINCE, Filter("from", "from"), Filter("to", "to")),
)


# --- parameter parsing --------------------------------------------------------------------------

DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
INT_RE = re.compile(r"^[0-9]{1,18}$")


def _invalid(message: str) -> ApiError:
    return ApiError(422, message)


def parse_int(name: str, raw: str) -> int:
    """A query parameter that must be a non-negative integer, else Harvest's 422."""
    if not INT_RE.match(raw.strip()):
        raise _invalid(f"Invalid value for {name}: {raw!r} is not an integer")
    return int(raw)


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"true", "1"}:
        return True
    if value in {"false", "0"}:
        return False
    raise _invalid(f"Invalid value for {name}: {raw!r} is not a boolean (use true or false)")


def parse_date(name: str, raw: str) -> str:
    """A YYYY-MM-DD date, normalised; 422 for anything else."""
    value = raw.strip()
    try:
        if not DATE_RE.match(value):
            raise ValueError
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise _invalid(f"Invalid value for {name}: {raw!r} is not a valid date (YYYY-MM-DD)") from None


def parse_datetime(name: str, raw: str) -> float:
    """An ISO 8601 date-time (or date) as epoch seconds; naive values are taken as UTC."""
    value = raw.strip()
    try:
        if not DATE_RE.match(value[:10]):
            raise ValueError
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(f"Invalid value for {name}: {raw!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def parse_per_page(request: Request) -> int:
    raw = request.arg("per_page")
    if raw is None or raw == "":
        return MAX_PER_PAGE
    if not INT_RE.match(raw.strip()) or not 1 <= int(raw) <= MAX_PER_PAGE:
        raise _invalid(f"per_page must be an integer between 1 and {MAX_PER_PAGE}")
    return int(raw)


def encode_cursor(direction: str, resource: Resource, key: tuple[Any, ...]) -> str:
    """Harvest-style cursor: base64 of `{"after": {...}}` / `{"before": {...}}`, unpadded."""
    payload = orjson.dumps({direction: dict(zip(resource.order, key))})
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(resource: Resource, raw: str) -> tuple[str, tuple[Any, ...]]:
    """(direction, sort key) from a cursor this server issued; 422 for anything else."""
    try:
        padded = raw.strip().replace("+", "-").replace("/", "_")
        payload = orjson.loads(base64.urlsafe_b64decode(padded + "=" * (-len(padded) % 4)))
        (direction, position), = payload.items()
        if direction not in {"after", "before"} or set(position) != set(resource.order):
            raise ValueError
        key = tuple(position[column] for column in resource.order)
        if not all(isinstance(value, (int, str)) and not isinstance(value, bool) for value in key):
            raise ValueError
    except (ValueError, TypeError, AttributeError, orjson.JSONDecodeError):
        raise _invalid("Invalid cursor") from None
    return direction, key


# --- the app ------------------------------------------------------------------------------------

class HarvestApp(VendorApp):
    """Harvest API v2 over the sandbox's `hv_*` tables."""

    name = "harvest"
    prefix = "harvest"

    def register(self) -> None:
        # Match counts remembered per server-thread connection (see `ListQuery.count`); kept on the
        # app, so two servers in one process never share them.
        self.counts: dict[int, dict[tuple, tuple[tuple[int, int], int]]] = {}
        for resource in (CLIENTS, PROJECTS, USERS, TASKS, USER_ASSIGNMENTS, TASK_ASSIGNMENTS,
                         TIME_ENTRIES, EXPENSES, EXPENSE_CATEGORIES):
            self.route("GET", f"/v2/{resource.plural}", self._lister(resource))
        self.route("GET", "/v2/users/me", self.get_me)
        self.route("GET", "/v2/company", self.get_company)
        for resource in (CLIENTS, PROJECTS, USERS, TASKS, TIME_ENTRIES, EXPENSES, EXPENSE_CATEGORIES):
            self.route("GET", f"/v2/{resource.plural}/{{id}}", self._getter(resource))
        for resource in (USER_ASSIGNMENTS, TASK_ASSIGNMENTS):
            self.route("GET", f"/v2/projects/{{project_id}}/{resource.plural}",
                       self._lister(resource, scoped=True))
            self.route("GET", f"/v2/projects/{{project_id}}/{resource.plural}/{{id}}",
                       self._getter(resource, scoped=True))
        self.route("POST", "/v2/time_entries", self.create_time_entry)
        self.route("PATCH", "/v2/time_entries/{id}", self.update_time_entry)
        self.route("DELETE", "/v2/time_entries/{id}", self.delete_time_entry)
        self.route("POST", "/web/time_entries/mark_invoiced", self.mark_invoiced)
        self.route("POST", "/web/time_entries/reopen", self.reopen)
        self.route("POST", "/web/time_entries/approve", self.approve)

    # --- VendorApp hooks ---

    def authenticate(self, request: Request) -> Response | None:
        """400 without a User-Agent; 401 unless both the token and the account id match."""
        if not (request.headers.get("User-Agent") or "").strip():
            return json_response(400, {"message": MISSING_USER_AGENT})
        token = request.bearer_token() or request.arg("access_token") or ""
        account = request.headers.get("Harvest-Account-Id") or request.arg("account_id") or ""
        token_ok = hmac.compare_digest(token.encode(), self.credentials["access_token"].encode())
        account_ok = hmac.compare_digest(account.strip().encode(),
                                         str(self.credentials["account_id"]).encode())
        return None if token_ok and account_ok else json_response(401, INVALID_TOKEN)

    def error(self, status: int, message: str, **fields: Any) -> Response:
        """Harvest's shapes: 401 OAuth body, 400/422 `{message}`, others `{status, error}`."""
        if status == 401:
            return json_response(401, INVALID_TOKEN)
        if status in (400, 422):
            return json_response(status, {"message": message})
        return json_response(status, {"status": status, "error": REASONS.get(status, "Error")})

    def rate_policies(self, request: Request) -> list[RatePolicy]:
        return [RatePolicy("harvest-general", 100, 15.0)]

    def rate_limited(self, policy: RatePolicy, retry_after: int) -> Response:
        return json_response(429, {"status": 429, "error": "Too Many Requests"},
                             {"Retry-After": str(retry_after)})

    # --- reads ---

    def _lister(self, resource: Resource, scoped: bool = False) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            scope: list[tuple[str, Any]] = []
            if scoped:
                project_id = self._path_id(request, "project_id")
                if not request.db.execute("SELECT 1 FROM hv_projects WHERE id = ?",
                                          (project_id,)).fetchone():
                    raise ApiError(404, "project not found")
                scope.append(("project_id", project_id))
            return list_page(request, resource, scope, self.counts.setdefault(id(request.db), {}))
        return handler

    def _getter(self, resource: Resource, scoped: bool = False) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            conditions = [f"{resource.alias}.id = ?"]
            params: list[Any] = [self._path_id(request, "id")]
            if scoped:
                conditions.append(f"{resource.alias}.project_id = ?")
                params.append(self._path_id(request, "project_id"))
            return render_one(request.db, resource, " AND ".join(conditions), params)
        return handler

    @staticmethod
    def _path_id(request: Request, name: str) -> int:
        raw = request.params[name]
        if not INT_RE.match(raw):
            raise ApiError(404, f"no such {name}")
        return int(raw)

    def get_me(self, request: Request) -> Response:
        """The token's user: see `me_user_id`."""
        user_id = me_user_id(request.db)
        if user_id is None:
            raise ApiError(404, "no users")
        return render_one(request.db, USERS, "u.id = ?", [user_id])

    def get_company(self, request: Request) -> Response:
        """Company settings: defaults, overridden by the `harvest_company` meta entry if present."""
        overrides = store.get_meta(request.db, "harvest_company", {}) or {}
        return json_response(200, {**COMPANY_DEFAULTS, **overrides})

    # --- writes ---

    def create_time_entry(self, request: Request) -> Response:
        """POST /v2/time_entries (duration tracking): 201 with the new entry."""
        data = request_fields(request)
        con = request.db
        with write_transaction(con):
            default_user = me_user_id(con)
            values = resolve_time_entry(con, {"user_id": default_user, **data}, creating=True)
            stamp = store.Clock(con).stamp_ms() // 1000
            (top,) = con.execute("SELECT COALESCE(MAX(id), 0) FROM hv_time_entries").fetchone()
            values.update(id=max(int(top) + 1, FIRST_API_TIME_ENTRY_ID), is_locked=0,
                          locked_reason=None, is_closed=0, is_billed=0,
                          created_at=stamp, updated_at=stamp)
            columns = ", ".join(values)
            con.execute(f"INSERT INTO hv_time_entries ({columns}) VALUES "
                        f"({', '.join('?' * len(values))})", list(values.values()))
            facts.record(con, "harvest", "time_entry", str(values["id"]), "create", stamp,
                         **{key: value for key, value in values.items() if key != "id"})
        response = render_one(con, TIME_ENTRIES, "te.id = ?", [values["id"]])
        response.status = 201
        return response

    def update_time_entry(self, request: Request) -> Response:
        """PATCH /v2/time_entries/{id}: hours, notes, spent_date, project_id, task_id."""
        entry_id = self._path_id(request, "id")
        data = request_fields(request)
        con = request.db
        with write_transaction(con):
            current = con.execute(
                "SELECT user_id, project_id, task_id, spent_date, hours, notes, is_locked, "
                "is_closed, is_billed, locked_reason FROM hv_time_entries WHERE id = ?",
                (entry_id,)).fetchone()
            if current is None:
                raise ApiError(404, "time entry not found")
            refuse_if_locked(current[6:])
            merged = dict(zip(("user_id", "project_id", "task_id", "spent_date", "hours", "notes"),
                              current[:6]))
            editable = {"hours", "notes", "spent_date", "project_id", "task_id"}
            merged.update({key: value for key, value in data.items() if key in editable})
            values = resolve_time_entry(con, merged, creating=False)
            if any(values[key] != merged_value for key, merged_value in zip(
                    ("project_id", "task_id", "spent_date", "hours", "notes"), current[1:6])):
                stamp = store.Clock(con).stamp_ms() // 1000
                facts.record(con, "harvest", "time_entry", str(entry_id), "update", stamp, **values)
                values["updated_at"] = stamp
                assignments = ", ".join(f"{key} = ?" for key in values)
                con.execute(f"UPDATE hv_time_entries SET {assignments} WHERE id = ?",
                            [*values.values(), entry_id])
        return render_one(con, TIME_ENTRIES, "te.id = ?", [entry_id])

    def delete_time_entry(self, request: Request) -> Response:
        """DELETE /v2/time_entries/{id}: 200 with an empty body; locked entries are refused."""
        entry_id = self._path_id(request, "id")
        con = request.db
        with write_transaction(con):
            row = con.execute("SELECT is_locked, is_closed, is_billed, locked_reason "
                              "FROM hv_time_entries WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                raise ApiError(404, "time entry not found")
            refuse_if_locked(row)
            con.execute("DELETE FROM hv_time_entries WHERE id = ?", (entry_id,))
            facts.record(con, "harvest", "time_entry", str(entry_id), "delete", store.Clock(con).stamp_ms() // 1000)
        return Response(200, b"")

    def reopen(self, request: Request) -> Response:
        """What a manager does in Harvest's web app to let approved entries be corrected (its API
        cannot): each entry of `{"ids": [...]}` is no longer approved nor locked. Entries marked
        invoiced stay locked. 200 with the ids reopened."""
        return self._web_action(request, "reopen", "reopened", lambda closed, billed: None if billed or not closed
                                else {"is_closed": 0, "is_locked": 0, "locked_reason": None})

    def approve(self, request: Request) -> Response:
        """Approving entries in Harvest's web app: each entry of `{"ids": [...]}` is approved and
        locked. 200 with the ids approved."""
        return self._web_action(request, "approve", "approved", lambda closed, billed: None if billed or closed
                                else {"is_closed": 1, "is_locked": 1, "locked_reason": LOCKED_APPROVED})

    def mark_invoiced(self, request: Request) -> Response:
        """What Harvest's web app does when someone marks time entries invoiced by hand (its API
        has no such write): each entry of `{"ids": [...]}` becomes billed and locked, on no
        Harvest invoice. 200 with the ids now marked."""
        return self._web_action(request, "mark_invoiced", "marked", lambda closed, billed: None if billed
                                else {"is_billed": 1, "is_locked": 1, "locked_reason": LOCKED_INVOICED})

    @staticmethod
    def _web_action(request: Request, action: str, answer: str,
                    changes: Callable[[bool, bool], dict[str, Any] | None]) -> Response:
        """A web-app action on each entry of `{"ids": [...]}`, each change recorded as a fact; 404
        for an unknown entry. `changes(is_closed, is_billed)` gives the columns to set, or None to
        leave the entry as it is. 200 with the ids changed, under `answer`."""
        con = request.db
        done = []
        with write_transaction(con):
            stamp = store.Clock(con).stamp_ms() // 1000
            for entry_id in _entry_ids(request):
                row = con.execute("SELECT is_closed, is_billed FROM hv_time_entries WHERE id = ?", (entry_id,)).fetchone()
                if row is None:
                    raise ApiError(404, f"time entry {entry_id} not found")
                values = changes(bool(row[0]), bool(row[1]))
                if values is None:
                    continue
                sets = ", ".join(f"{column} = ?" for column in values)
                con.execute(f"UPDATE hv_time_entries SET {sets}, updated_at = ? WHERE id = ?",
                            [*values.values(), stamp, entry_id])
                facts.record(con, "harvest", "time_entry", str(entry_id), action, stamp)
                done.append(entry_id)
        return json_response(200, {answer: done})


# --- list and object rendering ------------------------------------------------------------------

@dataclasses.dataclass
class ListQuery:
    """A filtered list of one resource, read in its documented order (every key descending).

    `sort_matches` chooses how a page is picked. With few matches it is cheapest to find them
    through the filters' indexes and sort them; with many, to walk the sort index testing
    each row. SQLite, without statistics, tends to walk even when a filter keeps 0.1% of
    rows (a whole-table scan per page), so the choice is made from the match count.
    """

    con: sqlite3.Connection
    resource: Resource
    where: str
    params: list[Any]
    counts: dict[tuple, tuple[tuple[int, int], int]]  # this connection's remembered match counts
    sort_matches: bool = False

    def _key(self) -> tuple[str, str]:
        alias, order = self.resource.alias, self.resource.order
        return ("(" + ", ".join(f"{alias}.{column}" for column in order) + ")",
                "(" + ", ".join("?" * len(order)) + ")")

    def _page(self, condition: str, direction: str, limit: int, offset: int,
              key: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rendered rows (object JSON, then the sort key) of one page, in list order.

        Two phases: pick the page's ids from the base table alone (a narrow sort or index
        walk), then render only those. Rendering inside the sort would build every matching
        object, however few the page keeps.
        """
        resource, alias = self.resource, self.resource.alias
        ordering = ", ".join(f"{alias}.{column} {direction}" for column in resource.order)
        keys = ", ".join(f"{alias}.{column}" for column in resource.order)
        # A unary + (a no-op) hides a column from the planner: from the ORDER BY to make it
        # sort the matches, from the updated_since test to make it walk the sort index.
        since = SINCE_SQL.format(alias=alias)
        if self.sort_matches:
            where, pick_order = self.where, "+" + ordering.replace(", ", ", +")
        else:
            where, pick_order = self.where.replace(since, "+" + since), ordering
        picked = (f"SELECT {alias}.id FROM {resource.table} {alias} WHERE {where} "
                  f"AND {condition} ORDER BY {pick_order} LIMIT ? OFFSET ?")
        rows = self.con.execute(
            f"SELECT {resource.render}, {keys} FROM ({picked}) AS picked "
            f"JOIN {resource.table} {alias} ON {alias}.id = picked.id {resource.joins} "
            f"ORDER BY {ordering}", [*self.params, *key, limit, offset]).fetchall()
        return rows if direction == "DESC" else rows[::-1]

    def count(self) -> int:
        """How many records match; remembered per connection until the data changes, because
        every page of a walk reports `total_entries` and counting millions of rows per page
        would cost more than rendering the page."""
        con = self.con
        version = (con.execute("PRAGMA data_version").fetchone()[0], con.total_changes)
        cache = self.counts
        key = (self.resource.table, self.where, tuple(self.params))
        hit = cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        total = con.execute(f"SELECT COUNT(*) FROM {self.resource.table} {self.resource.alias} "
                            f"WHERE {self.where}", self.params).fetchone()[0]
        if len(cache) > 256:
            cache.clear()
        cache[key] = (version, total)
        return total

    def exists(self, comparison: str, key: tuple[Any, ...]) -> bool:
        """Whether any record's sort key compares `comparison` to `key` (e.g. `>=`)."""
        key_sql, marks = self._key()
        return bool(self.con.execute(
            f"SELECT EXISTS (SELECT 1 FROM {self.resource.table} {self.resource.alias} "
            f"WHERE {self.where} AND {key_sql} {comparison} {marks})",
            [*self.params, *key]).fetchone()[0])

    def at_offset(self, offset: int, limit: int) -> list[tuple[Any, ...]]:
        return self._page("1", "DESC", limit, offset)

    def after(self, key: tuple[Any, ...], limit: int) -> list[tuple[Any, ...]]:
        """Up to `limit` records following `key`, in list order."""
        key_sql, marks = self._key()
        return self._page(f"{key_sql} < {marks}", "DESC", limit, 0, key)

    def before(self, key: tuple[Any, ...], limit: int) -> list[tuple[Any, ...]]:
        """Up to `limit` records preceding `key`, in list order."""
        key_sql, marks = self._key()
        return self._page(f"{key_sql} > {marks}", "ASC", limit, 0, key)


def list_page(request: Request, resource: Resource, scope: list[tuple[str, Any]],
              counts: dict[tuple, tuple[tuple[int, int], int]]) -> Response:
    """One page of a list, with Harvest's envelope.

    Args:
        request: the request; its query holds the filters, `per_page`, `page` and `cursor`
            (which wins over `page`, as in Harvest).
        resource: what to list.
        scope: fixed `column = value` conditions from the path (e.g. the project).

    Returns:
        200 with `{<plural>: [...], per_page, total_pages, total_entries, next_page,
        previous_page, page, links}`. `links.next` is always a cursor link.
    """
    per_page = parse_per_page(request)
    conditions, params, echoed = build_filters(request, resource)
    for column, value in scope:
        conditions.append(f"{resource.alias}.{column} = ?")
        params.append(value)
    query = ListQuery(request.db, resource, " AND ".join(conditions) or "1", params, counts)
    total = query.count()
    query.sort_matches = bool(conditions) and total <= SORT_MATCHES_UP_TO
    total_pages = max(1, math.ceil(total / per_page))

    cursor_raw = request.arg("cursor")
    page = 0
    if cursor_raw:  # keyset paging; one row extra tells whether the walk goes on
        direction, key = decode_cursor(resource, cursor_raw)
        if direction == "after":
            rows = query.after(key, per_page + 1)
            has_next, rows = len(rows) > per_page, rows[:per_page]
            has_previous = query.exists(">=", key)
        else:
            rows = query.before(key, per_page + 1)
            has_previous, rows = len(rows) > per_page, rows[-per_page:]
            has_next = query.exists("<=", key)
        has_next = has_next and bool(rows)
        if not has_previous:
            numbers = (1, 2 if has_next else None, None)
        elif not has_next:
            numbers = (total_pages, None, total_pages - 1 if total_pages > 1 else None)
        else:
            numbers = (None, None, None)  # Harvest: null on cursor pages but the first and last
    else:
        page = parse_int("page", request.arg("page") or "1") or 1
        offset = (page - 1) * per_page
        rows = query.at_offset(offset, per_page) if offset < total else []
        has_next = bool(rows) and offset + len(rows) < total
        numbers = (page, page + 1 if page < total_pages else None, page - 1 if page > 1 else None)

    def link(ref: str, **position: Any) -> str:
        parts = [*position.items(), ("per_page", per_page), *echoed, ("ref", ref)]
        return f"{request.base_url}{request.path}?{urlencode(parts)}"

    if cursor_raw:
        previous = (link("previous_cursor", cursor=encode_cursor("before", resource, rows[0][1:]))
                    if rows and has_previous else None)
    else:
        previous = link("previous", page=page - 1) if page > 1 else None
    meta = {
        "per_page": per_page,
        "total_pages": total_pages,
        "total_entries": total,
        "next_page": numbers[1],
        "previous_page": numbers[2],
        "page": numbers[0],
        "links": {
            "first": link("first", page=1),
            "next": (link("next_cursor", cursor=encode_cursor("after", resource, rows[-1][1:]))
                     if has_next else None),
            "previous": previous,
            "last": link("last", page=total_pages),
        },
    }
    objects = ",".join(row[0] for row in rows).encode()
    body = b"".join((b'{"', resource.plural.encode(), b'":[', objects, b"],",
                     orjson.dumps(meta)[1:]))
    return json_response(200, body)


def build_filters(request: Request, resource: Resource
                  ) -> tuple[list[str], list[Any], list[tuple[str, str]]]:
    """SQL conditions and parameters for the request's filters, plus the (name, raw value)
    pairs to repeat in pagination links. Invalid values raise Harvest's 422."""
    conditions: list[str] = []
    params: list[Any] = []
    echoed: list[tuple[str, str]] = []
    alias = resource.alias
    for spec in resource.filters:
        raw = request.arg(spec.param)
        if raw is None or raw == "":
            continue
        echoed.append((spec.param, raw))
        if spec.kind == "int":
            conditions.append(f"{alias}.{spec.column} = ?")
            params.append(parse_int(spec.param, raw))
        elif spec.kind == "bool":
            conditions.append(f"{alias}.{spec.column} = ?")
            params.append(int(parse_bool(spec.param, raw)))
        elif spec.kind == "from":
            conditions.append(f"{alias}.spent_date >= ?")
            params.append(parse_date(spec.param, raw))
        elif spec.kind == "to":
            conditions.append(f"{alias}.spent_date <= ?")
            params.append(parse_date(spec.param, raw))
        elif spec.kind == "since":
            conditions.append(SINCE_SQL.format(alias=alias))
            params.append(parse_datetime(spec.param, raw))
        elif spec.kind == "running":
            if parse_bool(spec.param, raw):
                conditions.append("0")  # the sandbox has no running timers
        elif spec.kind == "never":
            conditions.append("0")
    return conditions, params, echoed


def render_one(con: sqlite3.Connection, resource: Resource, where: str, params: list[Any]) -> Response:
    """200 with one object rendered by SQLite, or 404."""
    row = con.execute(f"SELECT {resource.render} FROM {resource.source} WHERE {where}",
                      params).fetchone()
    if row is None:
        raise ApiError(404, f"{resource.plural} record not found")
    return json_response(200, row[0].encode())


def me_user_id(con: sqlite3.Connection) -> int | None:
    """The user the sandbox token belongs to.

    `meta.harvest_me_user_id` if set; else the lowest-id active administrator; else the
    lowest-id active user. Harvest ties a personal access token to one person; the sandbox
    token is the firm administrator's, which is also why it sees every record.
    """
    configured = store.get_meta(con, "harvest_me_user_id")
    if configured is not None:
        return int(configured)
    row = con.execute(
        "SELECT id FROM hv_users WHERE is_active = 1 "
        "ORDER BY instr(access_roles, 'administrator') = 0, id LIMIT 1").fetchone()
    return None if row is None else int(row[0])


# --- time entry writes --------------------------------------------------------------------------

def request_fields(request: Request) -> dict[str, Any]:
    """The body's parameters: JSON when the Content-Type says so, else form-encoded."""
    content_type = (request.headers.get("Content-Type") or "").lower()
    if "json" in content_type:
        data = request.json()
        if not isinstance(data, dict):
            raise ApiError(400, "request body must be a JSON object")
        return data
    return dict(request.form())


def _entry_ids(request: Request) -> list[int]:
    """The time entry ids of a web-app action's body, `{"ids": [...]}`; 422 otherwise."""
    ids = request_fields(request).get("ids")
    if not isinstance(ids, list) or not ids or any(_field_int(i) is None for i in ids):
        raise ApiError(422, "ids must be a non-empty list of time entry ids")
    return [_field_int(i) for i in ids]


def refuse_if_locked(state: tuple[Any, ...]) -> None:
    """422 for an entry that is locked, approved (closed) or invoiced (billed)."""
    is_locked, is_closed, is_billed, reason = state
    if is_locked or is_closed or is_billed:
        reason = reason or ("Item Invoiced and Locked" if is_billed else "Item Approved and Locked")
        raise ApiError(422, f"This time entry can't be edited: {reason}")


def _field_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and INT_RE.match(value.strip()):
        return int(value)
    return None


def _fetch(con: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
    cursor = con.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchone()


def _related(con: sqlite3.Connection, data: dict[str, Any], field: str, label: str, sql: str,
             errors: list[str]) -> sqlite3.Row | None:
    """The row a `*_id` field points at, or None with Harvest's message added to `errors`."""
    raw = data.get(field)
    if raw is None or raw == "":
        errors.append(f"{label} can't be blank")
        return None
    value = _field_int(raw)
    row = None if value is None else _fetch(con, sql, (value,))
    if row is None:
        errors.append(f"{label} must exist")
    return row


def _spent_date(raw: Any, errors: list[str]) -> str | None:
    if raw is None or raw == "":
        errors.append("Spent date can't be blank")
        return None
    try:
        return parse_date("spent_date", str(raw))
    except ApiError:
        errors.append("Spent date is not a valid date")
        return None


def _hours(raw: Any, errors: list[str], default: float | None) -> float | None:
    if raw is None or raw == "":
        raw = default
    try:
        if isinstance(raw, bool) or raw is None:
            raise ValueError
        hours = float(raw)
        if not math.isfinite(hours):
            raise ValueError
    except (TypeError, ValueError):
        errors.append("Hours is not a number")
        return None
    if not 0 <= hours <= 24:
        errors.append("Hours must be between 0 and 24")
    return hours


def resolve_time_entry(con: sqlite3.Connection, data: dict[str, Any], *, creating: bool
                       ) -> dict[str, Any]:
    """Validate a time entry's inputs and derive its stored columns, Harvest-style.

    Args:
        con: the connection, inside the write's transaction.
        data: user_id, project_id, task_id, spent_date, hours, notes (request values merged over
            the stored ones when updating).
        creating: whether `hours` may be absent (a new entry without hours gets 0.0; the
            sandbox has no running timers to start instead).

    Returns:
        Column values: user/project/task/client/assignment ids, spent_date, hours, notes,
        billable, budgeted, billable_rate (by the project's bill_by), cost_rate.

    Raises:
        ApiError: 422 with Harvest's comma-joined validation messages.
    """
    errors: list[str] = []
    project = _related(con, data, "project_id", "Project", "SELECT * FROM hv_projects WHERE id = ?",
                       errors)
    task = _related(con, data, "task_id", "Task", "SELECT * FROM hv_tasks WHERE id = ?", errors)
    user = _related(con, data, "user_id", "User", "SELECT * FROM hv_users WHERE id = ?", errors)
    spent_date = _spent_date(data.get("spent_date"), errors)
    hours = _hours(data.get("hours"), errors, 0.0 if creating else None)
    notes = data.get("notes")
    user_assignment = task_assignment = None
    if project is not None and user is not None:
        user_assignment = _fetch(con, "SELECT * FROM hv_user_assignments WHERE project_id = ? "
                                      "AND user_id = ? AND is_active = 1 ORDER BY id LIMIT 1",
                                 (project["id"], user["id"]))
        if user_assignment is None:
            errors.append("User is not assigned to the project")
        if not (project["is_active"] and user["is_active"]):
            errors.append("Project or user is archived")
    if project is not None and task is not None:
        task_assignment = _fetch(con, "SELECT * FROM hv_task_assignments WHERE project_id = ? "
                                      "AND task_id = ? AND is_active = 1 ORDER BY id LIMIT 1",
                                 (project["id"], task["id"]))
        if task_assignment is None or not task["is_active"]:
            errors.append("Task is not assigned to the project")
    if errors:
        raise ApiError(422, ", ".join(errors))
    assert project and user and user_assignment and task_assignment  # guaranteed by the checks

    billable = bool(project["is_billable"] and task_assignment["billable"])
    rate_by_basis = {
        "Project": project["hourly_rate"],
        "Tasks": task_assignment["hourly_rate"],
        "People": (user["default_hourly_rate"] if user_assignment["use_default_rates"]
                   else user_assignment["hourly_rate"]),
    }
    return {
        "user_id": user["id"], "project_id": project["id"], "task_id": task["id"],
        "client_id": project["client_id"], "user_assignment_id": user_assignment["id"],
        "task_assignment_id": task_assignment["id"], "spent_date": spent_date, "hours": hours,
        "notes": notes if notes is None else str(notes), "billable": int(billable),
        "budgeted": int(project["budget_by"] not in (None, "none")),
        "billable_rate": rate_by_basis.get(project["bill_by"]) if billable else None,
        "cost_rate": user["cost_rate"],
    }
