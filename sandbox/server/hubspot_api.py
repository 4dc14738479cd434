"""HubSpot CRM API (v3 objects, properties, search, batch; v4 associations) over the sandbox state.

Serves `hs_objects`, `hs_associations`, `hs_properties` and `hs_property_groups` with HubSpot's
paths, parameters, response shapes, error bodies, limits and rate-limit policies, so a
connector written against api.hubapi.com works unchanged against `http://127.0.0.1:PORT/hubspot`.

Pages are rendered by SQLite (json_object / json_group_array): Python picks the ids of a page
and wraps the envelope. Search filters are translated into SQL over `json_extract`, never
evaluated row by row in Python. Every write runs in one immediate transaction and is stamped
with the sandbox clock (`store.Clock.stamp_ms`), so `hs_lastmodifieddate` never goes backwards;
it is recorded as a fact in the same transaction (`sandbox.facts.hubspot`), so `advance` keeps it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
import sqlite3
import time
from decimal import Decimal, InvalidOperation
from typing import Any, Sequence
from urllib.parse import urlencode

import orjson

from sandbox import facts, store
from sandbox.hubspot_properties import DEFAULT_PROPERTIES, SYSTEM_COLUMNS
from sandbox.server.core import (
    ApiError,
    RatePolicy,
    Request,
    Response,
    VendorApp,
    correlation_id,
    json_response,
    write_transaction,
)

OBJECT_TYPES = {
    "companies": "companies", "company": "companies", "0-2": "companies",
    "contacts": "contacts", "contact": "contacts", "0-1": "contacts",
    "deals": "deals", "deal": "deals", "0-3": "deals",
    "notes": "notes", "note": "notes", "0-46": "notes",
}
SINGULAR = {"companies": "COMPANY", "contacts": "CONTACT", "deals": "DEAL", "notes": "NOTE"}

LIST_LIMIT_MAX = 100
SEARCH_LIMIT_MAX = 200
SEARCH_RESULT_CAP = 10_000
BATCH_MAX = 100
ASSOCIATIONS_LIMIT_MAX = 500
ASSOCIATIONS_BATCH_MAX = 1000
MAX_FILTER_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
TEN_SECONDLY_LIMITS = {"professional": 190, "enterprise": 190, "starter": 100, "free": 100}
SEARCH_PER_SECOND = 5

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
NOT_FOUND_MESSAGE = "Object not found.  objectId are usually numeric."
CATEGORIES = {400: "VALIDATION_ERROR", 401: "INVALID_AUTHENTICATION", 403: "MISSING_SCOPES",
              404: "OBJECT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 429: "RATE_LIMITS"}

FIELD_TYPES = {
    "string": {"text", "textarea", "phonenumber", "html", "file"},
    "number": {"number"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox"},
    "date": {"date"},
    "datetime": {"date"},
    "bool": {"booleancheckbox"},
}
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
DIGITS_RE = re.compile(r"^-?[0-9]+$")
OPERATORS = {"EQ", "NEQ", "GT", "GTE", "LT", "LTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
# Properties a create must set (engagements need their activity time).
REQUIRED = {"notes": ("hs_timestamp",)}
# Properties the free-text `query` of a search looks in.
QUERY_PROPERTIES = {
    "companies": ("name", "domain", "website", "phone"),
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "deals": ("dealname",),
    "notes": ("hs_note_body",),
}

# Records created through the API get ids above every id the generator assigns.
API_ID_FLOOR = 90_000_000_000


@dataclasses.dataclass(frozen=True)
class AssociationType:
    """A HUBSPOT_DEFINED association type: one direction, with its inverse and unlabeled twin."""

    type_id: int
    from_type: str
    to_type: str
    name: str
    label: str | None
    inverse: int
    unlabeled: int


ASSOCIATION_TYPES = {
    a.type_id: a
    for a in (
        AssociationType(1, "contacts", "companies", "contact_to_company", "Primary", 2, 279),
        AssociationType(279, "contacts", "companies", "contact_to_company_unlabeled", None, 280, 279),
        AssociationType(2, "companies", "contacts", "company_to_contact", "Primary", 1, 280),
        AssociationType(280, "companies", "contacts", "company_to_contact_unlabeled", None, 279, 280),
        AssociationType(5, "deals", "companies", "deal_to_company", "Primary", 6, 341),
        AssociationType(341, "deals", "companies", "deal_to_company_unlabeled", None, 342, 341),
        AssociationType(6, "companies", "deals", "company_to_deal", "Primary", 5, 342),
        AssociationType(342, "companies", "deals", "company_to_deal_unlabeled", None, 341, 342),
        AssociationType(3, "deals", "contacts", "deal_to_contact", None, 4, 3),
        AssociationType(4, "contacts", "deals", "contact_to_deal", None, 3, 4),
        AssociationType(190, "notes", "companies", "note_to_company", None, 189, 190),
        AssociationType(189, "companies", "notes", "company_to_note", None, 190, 189),
        AssociationType(202, "notes", "contacts", "note_to_contact", None, 201, 202),
        AssociationType(201, "contacts", "notes", "contact_to_note", None, 202, 201),
        AssociationType(214, "notes", "deals", "note_to_deal", None, 213, 214),
        AssociationType(213, "deals", "notes", "deal_to_note", None, 214, 213),
    )
}
_TYPE_NAME_SQL = (
    "CASE a.type_id "
    + " ".join(f"WHEN {a.type_id} THEN '{a.name}'" for a in ASSOCIATION_TYPES.values())
    + " ELSE CAST(a.type_id AS TEXT) END"
)


# --- small helpers ------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as HubSpot's ISO 8601 UTC timestamp, e.g. 2026-03-04T10:11:12.345Z."""
    seconds, millis = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def parse_epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from an epoch-ms number/string or an ISO 8601 date(time); None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if DIGITS_RE.match(text):
        return int(text)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return (parsed - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(milliseconds=1)


def _iso_sql(column: str) -> str:
    return (f"(strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000, 'unixepoch') "
            f"|| printf('.%03dZ', {column} % 1000))")


def _epoch_sql(expr: str) -> str:
    """SQL turning a stored date/datetime string (ISO or epoch-ms digits) into epoch ms."""
    return (f"(CASE WHEN {expr} GLOB '[0-9]*' AND {expr} NOT GLOB '*[^0-9]*' THEN CAST({expr} AS INTEGER) "
            f"ELSE CAST(round((julianday({expr}) - 2440587.5) * 86400000.0) AS INTEGER) END)")


def _path(name: str) -> str:
    return '$."' + name + '"'


class _Params:
    """Named SQL parameters collected while a statement is being built."""

    def __init__(self, **initial: Any):
        self.values: dict[str, Any] = dict(initial)

    def __call__(self, value: Any) -> str:
        key = f"p{len(self.values)}"
        self.values[key] = value
        return ":" + key


class _Snapshot:
    """A read transaction, so the several statements behind one response see one state."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN")
        return self.con

    def __exit__(self, *exc: object) -> None:
        self.con.execute("COMMIT")


def _object_type(segment: str) -> str:
    object_type = OBJECT_TYPES.get(segment.lower())
    if object_type is None:
        raise ApiError(400, f"Unable to infer object type from: {segment}")
    return object_type


def _object_id(raw: str) -> int:
    if not DIGITS_RE.match(raw) or raw.startswith("-"):
        raise ApiError(404, NOT_FOUND_MESSAGE, category="OBJECT_NOT_FOUND", context={"id": [raw]})
    return int(raw)


def _list_arg(request: Request, name: str) -> list[str]:
    """A multi-valued query parameter, comma-separated and/or repeated."""
    return [part.strip() for value in request.args(name) for part in value.split(",") if part.strip()]


def _bool_arg(request: Request, name: str) -> bool:
    return (request.arg(name) or "false").strip().lower() == "true"


def _int_value(raw: Any, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None
    if value < low:
        raise ApiError(400, f"{name} must be at least {low}")
    if value > high:
        raise ApiError(400, f"{name} must be less than or equal to {high}")
    return value


def _body(request: Request) -> dict[str, Any]:
    payload = request.json()
    if not isinstance(payload, dict):
        raise ApiError(400, "Invalid input JSON: expected an object")
    return payload


def _names_field(value: Any) -> list[str] | None:
    """A body's `properties` list (None when absent or empty)."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise ApiError(400, "Invalid input JSON: properties must be an array of strings")
    return value or None


def _string_value(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


# --- property definitions and value validation ----------------------------------------------


def _definitions(con: sqlite3.Connection, object_type: str) -> dict[str, dict[str, Any]]:
    """The live property definitions of a type (system properties always present)."""
    defs = {
        name: orjson.loads(definition)
        for name, definition in con.execute(
            "SELECT name, definition FROM hs_properties WHERE object_type = ? AND archived = 0",
            (object_type,),
        )
    }
    for name, column in SYSTEM_COLUMNS[object_type].items():
        defs.setdefault(name, {"name": name, "type": "number" if column == "id" else "datetime",
                               "modificationMetadata": {"readOnlyValue": True}})
    return defs


def _detail(name: str, error: str, message: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": error, "name": name,
            "localizedErrorMessage": message}


def _validation_error(details: list[dict[str, Any]], **context: Any) -> ApiError:
    """HubSpot's 400 for invalid property values: details in the message and in `errors`."""
    errors = [{"message": d["message"], "code": d["error"], "context": {"propertyName": [d["name"]]}}
              for d in details]
    fields: dict[str, Any] = {"category": "VALIDATION_ERROR", "errors": errors}
    if context:
        fields["context"] = context
    return ApiError(400, "Property values were not valid: " + orjson.dumps(details).decode(), **fields)


def _normalize(definition: dict[str, Any], raw: Any) -> tuple[str | None, tuple[str, str] | None]:
    """The stored form of one written value (None clears it), or an (error code, message)."""
    if raw is None or raw == "":
        return None, None
    if isinstance(raw, (dict, list)):
        return None, ("INVALID_TYPE", f"A value for {definition.get('name')} must be a string, number or boolean.")
    value = _string_value(raw).strip() if not isinstance(raw, str) else raw
    kind = definition.get("type")
    if kind == "number":
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None, ("INVALID_DECIMAL", f"{value} was not a valid number.")
        if not number.is_finite():
            return None, ("INVALID_DECIMAL", f"{value} was not a valid number.")
        return value.strip(), None
    if kind == "bool":
        if value.strip().lower() not in {"true", "false"}:
            return None, ("INVALID_BOOLEAN", f"{value} was not a valid boolean (true or false).")
        return value.strip().lower(), None
    if kind in {"date", "datetime"}:
        ms = parse_epoch_ms(value)
        if ms is None:
            return None, ("INVALID_DATE", f"{value} was not a valid {kind}; use epoch milliseconds or ISO 8601.")
        if kind == "date":
            if ms % 86_400_000:
                return None, ("INVALID_DATE", f"{value} is not midnight UTC; date properties take whole days.")
            return iso_ms(ms)[:10], None
        return iso_ms(ms), None
    if kind == "enumeration" and not definition.get("externalOptions"):
        allowed = [option["value"] for option in definition.get("options", [])]
        chosen = value.split(";") if definition.get("fieldType") == "checkbox" else [value]
        bad = [item for item in chosen if item not in allowed]
        if bad:
            return None, ("INVALID_OPTION",
                          f"{bad[0]} was not one of the allowed options: [{', '.join(allowed)}]")
    return value, None


def _validate(defs: dict[str, dict[str, Any]], properties: Any) -> tuple[dict[str, str | None], list[dict]]:
    """Normalized values and HubSpot-shaped error details for a `properties` object."""
    if not isinstance(properties, dict):
        raise ApiError(400, "Invalid input JSON: properties must be an object of name → value")
    values: dict[str, str | None] = {}
    details: list[dict[str, Any]] = []
    for name, raw in properties.items():
        definition = defs.get(name)
        if definition is None:
            details.append(_detail(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'))
            continue
        meta = definition.get("modificationMetadata", {})
        if meta.get("readOnlyValue") or definition.get("calculated"):
            details.append(_detail(name, "READ_ONLY_VALUE",
                                   f'"{name}" is a read only property; its value cannot be set.'))
            continue
        value, error = _normalize(definition, raw)
        if error:
            details.append(_detail(name, *error))
        else:
            values[name] = value
    return values, details


def _check_required(object_type: str, values: dict[str, str | None]) -> None:
    missing = [name for name in REQUIRED.get(object_type, ()) if not values.get(name)]
    if missing:
        raise ApiError(400, f"Error creating {SINGULAR[object_type]}. Some required properties were not set.",
                       category="VALIDATION_ERROR",
                       errors=[{"message": f"Required property '{name}' is missing", "code": "REQUIRED_FIELD",
                                "context": {"propertyName": [name]}} for name in missing])


def _derived(object_type: str, values: dict[str, str | None]) -> dict[str, str | None]:
    """Calculated properties that follow from written ones (deal stage → closed flags)."""
    if object_type != "deals" or "dealstage" not in values:
        return values
    stage = values["dealstage"]
    return {**values,
            "hs_is_closed_won": "true" if stage == "closedwon" else "false",
            "hs_is_closed": "true" if stage in {"closedwon", "closedlost"} else "false"}


# --- the app ----------------------------------------------------------------------------------


class HubSpotApp(VendorApp):
    """The sandbox firm's HubSpot portal.

    The rate-limit tier follows the server's live settings (`hubspot_tier`), so it can be
    changed through `/_sandbox/settings`; an app not mounted on a server uses "professional".
    """

    name = "hubspot"
    prefix = "hubspot"

    @property
    def tier(self) -> str:
        return str(getattr(self.settings, "hubspot_tier", "professional") or "professional").lower()

    def register(self) -> None:
        r = self.route
        r("GET", "/crm/v3/objects/{object_type}", self.list_objects)
        r("POST", "/crm/v3/objects/{object_type}", self.create_object)
        r("POST", "/crm/v3/objects/{object_type}/search", self.search)
        r("POST", "/crm/v3/objects/{object_type}/merge", self.merge)
        r("POST", "/crm/v3/objects/{object_type}/batch/read", self.batch_read)
        r("POST", "/crm/v3/objects/{object_type}/batch/update", self.batch_update)
        r("POST", "/crm/v3/objects/{object_type}/batch/create", self.batch_create)
        r("GET", "/crm/v3/objects/{object_type}/{object_id}", self.get_object)
        r("PATCH", "/crm/v3/objects/{object_type}/{object_id}", self.update_object)
        r("DELETE", "/crm/v3/objects/{object_type}/{object_id}", self.archive_object)
        r("POST", "/web/objects/{object_type}/{object_id}/restore", self.restore_object)
        r("GET", "/crm/v3/properties/{object_type}/groups", self.list_groups)
        r("POST", "/crm/v3/properties/{object_type}/groups", self.create_group)
        r("GET", "/crm/v3/properties/{object_type}/groups/{group_name}", self.get_group)
        r("GET", "/crm/v3/properties/{object_type}", self.list_properties)
        r("POST", "/crm/v3/properties/{object_type}", self.create_property)
        r("GET", "/crm/v3/properties/{object_type}/{property_name}", self.get_property)
        r("PATCH", "/crm/v3/properties/{object_type}/{property_name}", self.update_property)
        r("GET", "/crm/v4/objects/{from_type}/{object_id}/associations/{to_type}", self.list_associations)
        r("POST", "/crm/v4/associations/{from_type}/{to_type}/batch/read", self.batch_read_associations)

    # --- vendor plumbing -------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        token = request.bearer_token()
        expected = self.credentials["access_token"]
        if token is None or not secrets.compare_digest(token.encode(), expected.encode()):
            return self.error(401, AUTH_MESSAGE)
        return None

    def error(self, status: int, message: str, **fields: Any) -> Response:
        cid = correlation_id()
        body: dict[str, Any] = {"status": "error", "message": message, "correlationId": cid}
        category = fields.pop("category", None) or CATEGORIES.get(status, "INTERNAL_ERROR")
        body.update(fields)
        body["category"] = category
        return json_response(status, body, {"X-HubSpot-Correlation-Id": cid})

    def rate_policies(self, request: Request) -> list[RatePolicy]:
        if request.method == "POST" and request.path.endswith("/search"):
            return [RatePolicy("SECONDLY", SEARCH_PER_SECOND, 1.0)]
        limit = TEN_SECONDLY_LIMITS.get(self.tier, TEN_SECONDLY_LIMITS["professional"])
        return [RatePolicy("TEN_SECONDLY_ROLLING", limit, 10.0)]

    def quota_policies(self, request: Request) -> list[RatePolicy]:
        """HubSpot's daily cap, when the server's `hubspot_daily_limit` sets one (default: none)."""
        limit = int(getattr(self.settings, "hubspot_daily_limit", 0) or 0)
        return [RatePolicy("DAILY", limit, 86_400.0)] if limit > 0 else []

    def rate_headers(self, policy: RatePolicy, remaining: int) -> dict[str, str]:
        if policy.name == "SECONDLY":
            return {}
        if policy.name == "DAILY":
            return {"X-HubSpot-RateLimit-Daily": str(policy.limit),
                    "X-HubSpot-RateLimit-Daily-Remaining": str(remaining)}
        return {"X-HubSpot-RateLimit-Max": str(policy.limit),
                "X-HubSpot-RateLimit-Remaining": str(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(policy.window_s * 1000))}

    def rate_limited(self, policy: RatePolicy, retry_after: int) -> Response:
        # A fault-mode storm looks exactly like the burst limit a real portal hits.
        name = "TEN_SECONDLY_ROLLING" if policy.name == "FAULT_STORM" else policy.name
        cid = correlation_id()
        body = {"status": "error", "message": f"You have reached your {name.lower()} limit.",
                "errorType": "RATE_LIMIT", "correlationId": cid, "policyName": name}
        headers = {"Retry-After": str(retry_after), "X-HubSpot-Correlation-Id": cid}
        if name in {"TEN_SECONDLY_ROLLING", "DAILY"} and policy.limit:
            headers.update(self.rate_headers(policy, 0))
        return json_response(429, body, headers)

    # --- rendering --------------------------------------------------------------------------

    @staticmethod
    def _requested(object_type: str, defs: dict[str, dict[str, Any]], names: list[str] | None) -> list[str]:
        """Properties a read returns: the asked-for ones that exist, or the defaults; plus
        the always-returned system properties. Unknown names are ignored, as HubSpot does."""
        system = SYSTEM_COLUMNS[object_type]
        always = [n for n in DEFAULT_PROPERTIES[object_type] if n in system]
        chosen = [n for n in names if n in defs] if names else list(DEFAULT_PROPERTIES[object_type])
        return sorted(set(chosen) | set(always))

    @staticmethod
    def _association_keys(object_type: str, names: list[str]) -> list[str]:
        """Association targets asked for, as path types; unknown ones are ignored."""
        wanted: list[str] = []
        for name in names:
            target = OBJECT_TYPES.get(name.lower())
            if target and target != object_type and target not in wanted:
                wanted.append(target)
        return wanted

    @staticmethod
    def _record_sql(object_type: str, names: list[str], p: _Params, *, archived_at: bool) -> str:
        system = SYSTEM_COLUMNS[object_type]
        parts = []
        for name in names:
            column = system.get(name)
            if column == "id":
                value = "CAST(o.id AS TEXT)"
            elif column:
                value = _iso_sql(f"o.{column}")
            else:
                value = f"CAST(json_extract(o.properties, {p(_path(name))}) AS TEXT)"
            parts.append(f"{p(name)}, {value}")
        fields = [
            "'id', CAST(o.id AS TEXT)",
            f"'properties', json_object({', '.join(parts)})",
            f"'createdAt', {_iso_sql('o.created_at')}",
            f"'updatedAt', {_iso_sql('o.updated_at')}",
            "'archived', json(CASE WHEN o.archived THEN 'true' ELSE 'false' END)",
        ]
        if archived_at:
            fields.append(f"'archivedAt', {_iso_sql('o.archived_at')}")
        return f"json_object({', '.join(fields)})"

    @staticmethod
    def _associations_sql(object_type: str, targets: list[str], p: _Params) -> str:
        merged = "'{}'"
        for target in targets:
            per_type = (
                f"(SELECT CASE WHEN count(*) > 0 THEN json_object({p(target)}, json_object('results', "
                f"json_group_array(json_object('id', CAST(a.to_id AS TEXT), 'type', {_TYPE_NAME_SQL})))) END "
                f"FROM hs_associations a WHERE a.from_type = {p(object_type)} AND a.from_id = o.id "
                f"AND a.to_type = {p(target)})"
            )
            merged = f"json_patch({merged}, COALESCE({per_type}, '{{}}'))"
        return merged

    def _render(self, con: sqlite3.Connection, object_type: str, ids: list[int], names: list[str],
                associations: Sequence[str] = (), *, archived_at: bool = False) -> bytes:
        """JSON array of the objects with `ids`, in that order, rendered by SQLite."""
        if not ids:
            return b"[]"
        p = _Params(ids=orjson.dumps(ids).decode(), object_type=object_type)
        record = self._record_sql(object_type, names, p, archived_at=archived_at)
        assoc = self._associations_sql(object_type, list(associations), p) if associations else "'{}'"
        sql = (
            "SELECT json_group_array(json(CASE WHEN a = '{}' THEN r "
            "ELSE json_set(r, '$.associations', json(a)) END)) "
            f"FROM (SELECT {record} AS r, {assoc} AS a FROM json_each(:ids) AS page "
            "JOIN hs_objects o ON o.object_type = :object_type AND o.id = page.value ORDER BY page.key)"
        )
        (text,) = con.execute(sql, p.values).fetchone()
        return text.encode()

    def _render_one(self, con: sqlite3.Connection, object_type: str, object_id: int, names: list[str],
                    associations: Sequence[str] = (), *, archived_at: bool = False) -> bytes:
        return self._render(con, object_type, [object_id], names, associations, archived_at=archived_at)[1:-1]

    # --- objects: reads ---------------------------------------------------------------------

    def list_objects(self, request: Request) -> Response:
        """GET /crm/v3/objects/{type}: a page of records by ascending id; `after` is the last id."""
        object_type = _object_type(request.params["object_type"])
        limit = _int_value(request.arg("limit"), "limit", 10, 1, LIST_LIMIT_MAX)
        after_raw = request.arg("after") or "0"
        if not DIGITS_RE.match(after_raw):
            raise ApiError(400, f"after must be a paging cursor from a previous response, got {after_raw!r}")
        archived = _bool_arg(request, "archived")
        con = request.db
        with _Snapshot(con):
            defs = _definitions(con, object_type)
            names = self._requested(object_type, defs, _list_arg(request, "properties"))
            targets = self._association_keys(object_type, _list_arg(request, "associations"))
            ids = [row[0] for row in con.execute(
                "SELECT id FROM hs_objects WHERE object_type = ? AND archived = ? AND id > ? "
                "ORDER BY id LIMIT ?", (object_type, int(archived), int(after_raw), limit + 1))]
            results = self._render(con, object_type, ids[:limit], names, targets, archived_at=archived)
        body = b'{"results":' + results
        if len(ids) > limit:
            after = str(ids[limit - 1])
            query = [(k, v) for k, v in request.query if k != "after"] + [("after", after)]
            link = f"{request.base_url}{request.path}?{urlencode(query)}"
            body += b',"paging":' + orjson.dumps({"next": {"after": after, "link": link}})
        return json_response(200, body + b"}")

    def get_object(self, request: Request) -> Response:
        """GET /crm/v3/objects/{type}/{id}."""
        object_type = _object_type(request.params["object_type"])
        raw_id = request.params["object_id"]
        object_id = _object_id(raw_id)
        archived = _bool_arg(request, "archived")
        con = request.db
        with _Snapshot(con):
            row = con.execute("SELECT archived FROM hs_objects WHERE object_type = ? AND id = ?",
                              (object_type, object_id)).fetchone()
            if row is None or bool(row[0]) != archived:
                raise ApiError(404, NOT_FOUND_MESSAGE, category="OBJECT_NOT_FOUND", context={"id": [raw_id]})
            defs = _definitions(con, object_type)
            names = self._requested(object_type, defs, _list_arg(request, "properties"))
            targets = self._association_keys(object_type, _list_arg(request, "associations"))
            body = self._render_one(con, object_type, object_id, names, targets, archived_at=archived)
        return json_response(200, body)

    def batch_read(self, request: Request) -> Response:
        """POST /crm/v3/objects/{type}/batch/read: 200, or 207 naming the ids not found."""
        object_type = _object_type(request.params["object_type"])
        body = _body(request)
        inputs = self._inputs(body)
        if body.get("idProperty") not in (None, "", "hs_object_id"):
            raise ApiError(400, "The sandbox reads batches by record id only (idProperty hs_object_id).")
        wanted = list(dict.fromkeys(str(item.get("id", "")) for item in inputs))
        numeric = [int(x) for x in wanted if DIGITS_RE.match(x) and not x.startswith("-")]
        archived = _bool_arg(request, "archived")
        started = iso_ms(store.Clock(request.db).now_ms)
        con = request.db
        with _Snapshot(con):
            found = {row[0] for row in con.execute(
                "SELECT id FROM hs_objects WHERE object_type = ? AND archived = ? "
                "AND id IN (SELECT value FROM json_each(?))",
                (object_type, int(archived), orjson.dumps(numeric).decode()))}
            defs = _definitions(con, object_type)
            names = self._requested(object_type, defs, _names_field(body.get("properties")))
            ids = [i for i in numeric if i in found]
            results = self._render(con, object_type, ids, names, archived_at=archived)
        missing = [x for x in wanted if not (DIGITS_RE.match(x) and int(x) in found)]
        errors = []
        if missing:
            errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                           "message": f"Could not get some {SINGULAR[object_type]} objects, they may be "
                                      f"deleted or not exist. Check that ids are valid.",
                           "context": {"ids": missing}})
        return self._batch_response(200, results, errors, started)

    # --- objects: writes --------------------------------------------------------------------

    @staticmethod
    def _inputs(body: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(item, dict) for item in inputs):
            raise ApiError(400, "Invalid input JSON: inputs must be an array of objects")
        if len(inputs) > BATCH_MAX:
            raise ApiError(400, f"Too many inputs: {len(inputs)}. The limit is {BATCH_MAX} inputs per batch.",
                           context={"limit": [str(BATCH_MAX)]})
        return inputs

    @staticmethod
    def _batch_response(status: int, results: bytes, errors: list[dict[str, Any]], started: str,
                        completed: str | None = None) -> Response:
        head = {"status": "COMPLETE"}
        tail: dict[str, Any] = {}
        if errors:
            status = 207
            tail = {"numErrors": len(errors), "errors": errors}
        tail.update(startedAt=started, completedAt=completed or started)
        body = orjson.dumps(head)[:-1] + b',"results":' + results + b"," + orjson.dumps(tail)[1:]
        return json_response(status, body)

    def _associations_to_write(self, con: sqlite3.Connection, object_type: str,
                               specs: Any) -> list[tuple[AssociationType, int]]:
        """Validate `associations` of a create: known type ids from this type, existing targets."""
        if specs in (None, []):
            return []
        if not isinstance(specs, list):
            raise ApiError(400, "Invalid input JSON: associations must be an array")
        links: list[tuple[AssociationType, int]] = []
        for spec in specs:
            to = spec.get("to") if isinstance(spec, dict) else None
            target = str(to.get("id", "")) if isinstance(to, dict) else ""
            types = spec.get("types") if isinstance(spec, dict) else None
            if not DIGITS_RE.match(target) or not isinstance(types, list) or not types:
                raise ApiError(400, "One or more associations are invalid: each needs to.id and types.")
            for item in types:
                raw_type = item.get("associationTypeId") if isinstance(item, dict) else None
                kind = ASSOCIATION_TYPES.get(raw_type) if isinstance(raw_type, int) else None
                if kind is None or kind.from_type != object_type:
                    raise ApiError(400, f"Association type {raw_type} is not valid from {object_type}.",
                                   context={"associationTypeId": [str(raw_type)]})
                exists = con.execute("SELECT 1 FROM hs_objects WHERE object_type = ? AND id = ? AND archived = 0",
                                     (kind.to_type, int(target))).fetchone()
                if exists is None:
                    raise ApiError(400, f"One or more associations are invalid: no {SINGULAR[kind.to_type]} "
                                        f"with id {target}.", context={"id": [target]})
                links.append((kind, int(target)))
        return links

    @staticmethod
    def _write_associations(con: sqlite3.Connection, object_id: int,
                            links: list[tuple[AssociationType, int]]) -> None:
        rows = []
        for kind, target in links:
            for type_id in {kind.type_id, kind.unlabeled}:
                forward = ASSOCIATION_TYPES[type_id]
                inverse = ASSOCIATION_TYPES[forward.inverse]
                rows.append((forward.from_type, object_id, forward.to_type, target, forward.type_id, forward.label))
                rows.append((inverse.from_type, target, inverse.to_type, object_id, inverse.type_id, inverse.label))
        con.executemany(
            "INSERT OR IGNORE INTO hs_associations (from_type, from_id, to_type, to_id, type_id, category, label) "
            "VALUES (?, ?, ?, ?, ?, 'HUBSPOT_DEFINED', ?)", rows)

    @classmethod
    def _create(cls, con: sqlite3.Connection, object_type: str, values: dict[str, str | None],
                links: list[tuple[AssociationType, int]], stamp: int) -> int:
        """Insert a record with its associations, and record the creation as a fact."""
        (new_id,) = con.execute("SELECT MAX(COALESCE(MAX(id), 0) + 1, ?) FROM hs_objects WHERE object_type = ?",
                                (API_ID_FLOOR, object_type)).fetchone()
        stored = {k: v for k, v in _derived(object_type, values).items() if v is not None}
        con.execute("INSERT INTO hs_objects (object_type, id, properties, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)", (object_type, new_id, orjson.dumps(stored).decode(), stamp, stamp))
        cls._write_associations(con, new_id, links)
        facts.record(con, "hubspot", object_type, str(new_id), "create", stamp // 1000, properties=stored,
                     associations=[[kind.to_type, target, kind.type_id] for kind, target in links])
        return new_id

    def create_object(self, request: Request) -> Response:
        """POST /crm/v3/objects/{type}: 201 with the new record (and its associations made)."""
        object_type = _object_type(request.params["object_type"])
        body = _body(request)
        con = request.db
        defs = _definitions(con, object_type)
        values, details = _validate(defs, body.get("properties") or {})
        if details:
            raise _validation_error(details)
        _check_required(object_type, values)
        with write_transaction(con):
            links = self._associations_to_write(con, object_type, body.get("associations"))
            new_id = self._create(con, object_type, values, links, store.Clock(con).stamp_ms())
        names = self._requested(object_type, defs, list(values) or None)
        return json_response(201, self._render_one(con, object_type, new_id, names))

    def batch_create(self, request: Request) -> Response:
        """POST /crm/v3/objects/{type}/batch/create: all inputs valid → 201, else 400 for the batch."""
        object_type = _object_type(request.params["object_type"])
        inputs = self._inputs(_body(request))
        con = request.db
        defs = _definitions(con, object_type)
        validated = []
        for index, item in enumerate(inputs):
            values, details = _validate(defs, item.get("properties") or {})
            if details:
                raise _validation_error(details, index=[str(index)])
            _check_required(object_type, values)
            validated.append((values, item.get("associations")))
        with write_transaction(con):
            stamp = store.Clock(con).stamp_ms()
            ids = []
            for values, specs in validated:
                links = self._associations_to_write(con, object_type, specs)
                ids.append(self._create(con, object_type, values, links, stamp))
        written = sorted({name for values, _ in validated for name in values})
        results = self._render(con, object_type, ids, self._requested(object_type, defs, written or None))
        return self._batch_response(201, results, [], iso_ms(stamp))

    def update_object(self, request: Request) -> Response:
        """PATCH /crm/v3/objects/{type}/{id}: partial update; "" clears a value."""
        object_type = _object_type(request.params["object_type"])
        raw_id = request.params["object_id"]
        object_id = _object_id(raw_id)
        body = _body(request)
        properties = body.get("properties")
        if not properties:
            raise ApiError(400, "No properties found to update, please provide at least one.")
        con = request.db
        defs = _definitions(con, object_type)
        values, details = _validate(defs, properties)
        if details:
            raise _validation_error(details)
        with write_transaction(con):
            exists = con.execute("SELECT 1 FROM hs_objects WHERE object_type = ? AND id = ? AND archived = 0",
                                 (object_type, object_id)).fetchone()
            if exists is None:
                raise ApiError(404, NOT_FOUND_MESSAGE, category="OBJECT_NOT_FOUND", context={"id": [raw_id]})
            self._apply(con, object_type, [(object_id, values)], store.Clock(con).stamp_ms())
        names = self._requested(object_type, defs, list(values))
        return json_response(200, self._render_one(con, object_type, object_id, names))

    @staticmethod
    def _apply(con: sqlite3.Connection, object_type: str,
               updates: list[tuple[int, dict[str, str | None]]], stamp: int) -> None:
        # json_patch (RFC 7396) sets the given keys and removes those patched with null.
        facts.record_many(con, [("hubspot", object_type, str(object_id), "update", stamp // 1000, {"properties": values})
                                for object_id, values in updates])
        con.executemany(
            "UPDATE hs_objects SET properties = json_patch(properties, ?), updated_at = ? "
            "WHERE object_type = ? AND id = ?",
            [(orjson.dumps(_derived(object_type, values)).decode(), stamp, object_type, object_id)
             for object_id, values in updates])

    def merge(self, request: Request) -> Response:
        """POST /crm/v3/objects/{type}/merge: `objectIdToMerge` is merged into `primaryObjectId`.
        Its id is gone (listed in the primary's `hs_merged_object_ids`, with any it had merged
        before) and its associations move to the primary; 200 with the primary."""
        object_type = _object_type(request.params["object_type"])
        body = _body(request)
        raw_primary, raw_merged = str(body.get("primaryObjectId", "")), str(body.get("objectIdToMerge", ""))
        primary, merged = _object_id(raw_primary), _object_id(raw_merged)
        if primary == merged:
            raise ApiError(400, "primaryObjectId and objectIdToMerge must be different records.")
        con = request.db
        with write_transaction(con):
            found = dict(con.execute(
                "SELECT id, properties FROM hs_objects WHERE object_type = ? AND archived = 0 AND id IN (?, ?)",
                (object_type, primary, merged)).fetchall())
            missing = [raw for raw, key in ((raw_primary, primary), (raw_merged, merged)) if key not in found]
            if missing:
                raise ApiError(404, NOT_FOUND_MESSAGE, category="OBJECT_NOT_FOUND", context={"id": missing})
            listed = [x for props in (found[primary], found[merged])
                      for x in (orjson.loads(props).get("hs_merged_object_ids") or "").split(";") if x]
            stamp = store.Clock(con).stamp_ms()
            self._apply(con, object_type, [(primary, {"hs_merged_object_ids": ";".join([*listed, str(merged)])})],
                        stamp)
            store.move_associations(con, object_type, merged, primary)
            con.execute("DELETE FROM hs_objects WHERE object_type = ? AND id = ?", (object_type, merged))
            facts.record(con, "hubspot", object_type, str(merged), "merge", stamp // 1000, into=primary)
        defs = _definitions(con, object_type)
        return json_response(200, self._render_one(con, object_type, primary,
                                                   self._requested(object_type, defs, ["hs_merged_object_ids"])))

    def batch_update(self, request: Request) -> Response:
        """POST /crm/v3/objects/{type}/batch/update: valid inputs are applied; failures → 207."""
        object_type = _object_type(request.params["object_type"])
        inputs = self._inputs(_body(request))
        ids = [str(item.get("id", "")) for item in inputs]
        duplicates = sorted({x for x in ids if ids.count(x) > 1})
        if duplicates:
            raise ApiError(400, f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique",
                           context={"ids": duplicates})
        con = request.db
        defs = _definitions(con, object_type)
        errors: list[dict[str, Any]] = []
        candidates: list[tuple[int, dict[str, str | None]]] = []
        missing: list[str] = []
        for raw_id, item in zip(ids, inputs):
            properties = item.get("properties")
            values, details = _validate(defs, properties if isinstance(properties, dict) else {})
            if details:
                context: dict[str, list[str]] = {"ids": [raw_id]}
                if item.get("objectWriteTraceId"):
                    context["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": "Property values were not valid: " + orjson.dumps(details).decode(),
                               "context": context})
            elif not DIGITS_RE.match(raw_id) or raw_id.startswith("-"):
                missing.append(raw_id)
            elif self._fault_rejects(object_type, raw_id):
                details = [_detail(name, "INVALID_VALUE", "Rejected by the sandbox's fault mode (reject_rate).")
                           for name in list(values)[:1]]
                errors.append({"status": "error", "category": "VALIDATION_ERROR",
                               "message": "Property values were not valid: " + orjson.dumps(details).decode(),
                               "context": {"ids": [raw_id]}})
            else:
                candidates.append((int(raw_id), values))
        with write_transaction(con):
            live = {row[0] for row in con.execute(
                "SELECT id FROM hs_objects WHERE object_type = ? AND archived = 0 "
                "AND id IN (SELECT value FROM json_each(?))",
                (object_type, orjson.dumps([c[0] for c in candidates]).decode()))}
            missing += [str(object_id) for object_id, _ in candidates if object_id not in live]
            updates = [(object_id, values) for object_id, values in candidates if object_id in live]
            clock = store.Clock(con)
            stamp = clock.stamp_ms() if updates else clock.now_ms
            if updates:
                self._apply(con, object_type, updates, stamp)
        if missing:
            errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                           "message": f"Could not get some {SINGULAR[object_type]} objects, they may be "
                                      f"deleted or not exist. Check that ids are valid.",
                           "context": {"ids": missing}})
        written = sorted({name for _, values in updates for name in values})
        results = self._render(con, object_type, [u[0] for u in updates],
                               self._requested(object_type, defs, written or None))
        return self._batch_response(200, results, errors, iso_ms(stamp))

    def _fault_rejects(self, object_type: str, raw_id: str) -> bool:
        faults = getattr(self.settings, "faults", None)
        return bool(faults and faults.rejects(f"{object_type}:{raw_id}"))

    def archive_object(self, request: Request) -> Response:
        """DELETE /crm/v3/objects/{type}/{id}: archive (soft delete); 204."""
        self._set_archived(request, True)
        return Response(204, b"")

    def restore_object(self, request: Request) -> Response:
        """What HubSpot's web app does when someone restores a record from the recycle bin (the
        CRM API has no such write): the same id, live again, changed now."""
        object_id = self._set_archived(request, False)
        return json_response(200, {"id": str(object_id), "archived": False})

    def _set_archived(self, request: Request, archived: bool) -> int:
        """Archive or restore one record, recorded as a fact; 404 unless it is live (to archive) or
        archived (to restore). Returns its id."""
        object_type = _object_type(request.params["object_type"])
        raw_id = request.params["object_id"]
        object_id = _object_id(raw_id)
        con = request.db
        with write_transaction(con):
            stamp = store.Clock(con).stamp_ms()
            cursor = con.execute("UPDATE hs_objects SET archived = ?, archived_at = ?, updated_at = ? "
                                 "WHERE object_type = ? AND id = ? AND archived = ?",
                                 (int(archived), stamp if archived else None, stamp, object_type, object_id,
                                  int(not archived)))
            if cursor.rowcount == 0:
                raise ApiError(404, NOT_FOUND_MESSAGE, category="OBJECT_NOT_FOUND", context={"id": [raw_id]})
            if archived:
                facts.record(con, "hubspot", object_type, str(object_id), "archive", stamp // 1000, archived_at=stamp)
            else:
                facts.record(con, "hubspot", object_type, str(object_id), "restore", stamp // 1000, restored_at=stamp)
        return object_id

    # --- search -----------------------------------------------------------------------------

    def search(self, request: Request) -> Response:
        """POST /crm/v3/objects/{type}/search: filterGroups (OR of ANDs), sorts, offset paging.

        Archived records are never found. `after` is an offset; results stop at 10,000 and
        asking for an offset at or past it is a 400, as on HubSpot.
        """
        object_type = _object_type(request.params["object_type"])
        body = _body(request)
        limit = _int_value(body.get("limit"), "limit", 10, 1, SEARCH_LIMIT_MAX)
        offset = _int_value(body.get("after"), "after", 0, 0, 2**62)
        if offset >= SEARCH_RESULT_CAP:
            raise ApiError(400, f"Search results are limited to {SEARCH_RESULT_CAP} per query; cannot page "
                                f"past result {SEARCH_RESULT_CAP} (after={offset}). Narrow the filters, for "
                                f"example split the time window.",
                           context={"after": [str(offset)], "limit": [str(SEARCH_RESULT_CAP)]})
        con = request.db
        with _Snapshot(con):
            defs = _definitions(con, object_type)
            p = _Params(object_type=object_type)
            where = self._where(object_type, defs, body, p)
            order = self._order(object_type, defs, body.get("sorts"), p)
            names = self._requested(object_type, defs, _names_field(body.get("properties")))
            base = f"FROM hs_objects o WHERE o.object_type = :object_type AND o.archived = 0 AND {where}"
            (total,) = con.execute(f"SELECT count(*) {base}", p.values).fetchone()
            page = min(limit, SEARCH_RESULT_CAP - offset)
            ids = [row[0] for row in con.execute(
                f"SELECT o.id {base} ORDER BY {order} LIMIT {page} OFFSET {offset}", p.values)]
            results = self._render(con, object_type, ids, names)
        body_out = b'{"total":' + str(total).encode() + b',"results":' + results
        if offset + len(ids) < total:
            body_out += b',"paging":' + orjson.dumps({"next": {"after": str(offset + len(ids))}})
        return json_response(200, body_out + b"}")

    @staticmethod
    def _value_sql(object_type: str, defs: dict[str, dict[str, Any]], name: str,
                   p: _Params) -> tuple[str, str, str | None]:
        """(comparable SQL expression, kind, raw stored expression or None for a column)."""
        if name not in defs:
            raise ApiError(400, f"Property \"{name}\" does not exist on {object_type}; cannot filter or sort by it.",
                           context={"propertyName": [name]})
        column = SYSTEM_COLUMNS[object_type].get(name)
        if column:
            return f"o.{column}", "id" if column == "id" else "epoch", None
        raw = f"NULLIF(json_extract(o.properties, {p(_path(name))}), '')"
        kind = defs[name].get("type", "string")
        if kind == "number":
            return f"CAST({raw} AS REAL)", "number", raw
        if kind in {"date", "datetime"}:
            return _epoch_sql(raw), "epoch", raw
        return f"lower({raw})", "text", raw

    @staticmethod
    def _filter_value(kind: str, value: Any, name: str) -> Any:
        if value is None or isinstance(value, (dict, list)):
            raise ApiError(400, f"A value is required for the filter on {name}.")
        if kind == "epoch":
            ms = parse_epoch_ms(value)
            if ms is None:
                raise ApiError(400, f"{value} is not a valid date for {name}; use epoch milliseconds or ISO 8601.")
            return ms
        if kind in {"number", "id"}:
            try:
                number = Decimal(_string_value(value).strip())
            except InvalidOperation:
                raise ApiError(400, f"{value} is not a valid number for {name}.") from None
            return int(number) if kind == "id" else float(number)
        return _string_value(value).lower()

    def _filter_sql(self, object_type: str, defs: dict[str, dict[str, Any]], f: Any, p: _Params) -> str:
        if not isinstance(f, dict) or not isinstance(f.get("propertyName"), str):
            raise ApiError(400, "Invalid input JSON: each filter needs propertyName and operator")
        name, operator = f["propertyName"], f.get("operator")
        if operator not in OPERATORS:
            raise ApiError(400, f"Unknown filter operator {operator!r}; known: {sorted(OPERATORS)}")
        expr, kind, raw = self._value_sql(object_type, defs, name, p)
        present = f"({raw} IS NOT NULL)" if raw else "1"
        if operator == "HAS_PROPERTY":
            return present
        if operator == "NOT_HAS_PROPERTY":
            return f"(NOT {present})"
        if operator in {"CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}:
            token = _string_value(f.get("value", "")).lower().replace("*", "%")
            match = f"(lower(CAST({raw or expr} AS TEXT)) LIKE {p('%' + token + '%')})"
            return match if operator == "CONTAINS_TOKEN" else f"(NOT {present} OR NOT {match})"
        if operator in {"IN", "NOT_IN"}:
            values = f.get("values")
            if not isinstance(values, list) or not values:
                raise ApiError(400, f"The {operator} filter on {name} needs a non-empty values array.")
            listed = orjson.dumps([self._filter_value(kind, v, name) for v in values]).decode()
            inside = f"({expr} IN (SELECT value FROM json_each({p(listed)})))"
            return inside if operator == "IN" else f"(NOT {present} OR NOT {inside})"
        value = p(self._filter_value(kind, f.get("value"), name))
        if operator == "BETWEEN":
            high = p(self._filter_value(kind, f.get("highValue"), name))
            return f"({expr} BETWEEN {value} AND {high})"
        if operator == "NEQ":
            return f"(NOT {present} OR {expr} != {value})"
        comparison = {"EQ": "=", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}[operator]
        return f"({expr} {comparison} {value})"

    def _where(self, object_type: str, defs: dict[str, dict[str, Any]], body: dict[str, Any], p: _Params) -> str:
        groups = body.get("filterGroups") or []
        if not isinstance(groups, list):
            raise ApiError(400, "Invalid input JSON: filterGroups must be an array")
        filters_total = sum(len((g or {}).get("filters") or []) for g in groups if isinstance(g, dict))
        too_many = [n for n in (len((g or {}).get("filters") or []) for g in groups if isinstance(g, dict))
                    if n > MAX_FILTERS_PER_GROUP]
        if len(groups) > MAX_FILTER_GROUPS or too_many or filters_total > MAX_FILTERS:
            raise ApiError(400, f"Too many filters: a search takes at most {MAX_FILTER_GROUPS} filterGroups "
                                f"with up to {MAX_FILTERS_PER_GROUP} filters each and {MAX_FILTERS} filters "
                                f"in total (got {len(groups)} groups, {filters_total} filters).")
        clauses = []
        for group in groups:
            filters = (group or {}).get("filters") if isinstance(group, dict) else None
            if not isinstance(filters, list) or not filters:
                raise ApiError(400, "Invalid input JSON: each filterGroup needs a non-empty filters array")
            clauses.append("(" + " AND ".join(self._filter_sql(object_type, defs, f, p) for f in filters) + ")")
        where = "(" + " OR ".join(clauses) + ")" if clauses else "1"
        query = body.get("query")
        if isinstance(query, str) and query.strip():
            needle = p(query.strip().lower())
            matches = [f"instr(lower(COALESCE(json_extract(o.properties, {p(_path(n))}), '')), {needle}) > 0"
                       for n in QUERY_PROPERTIES[object_type]]
            where = f"({where} AND ({' OR '.join(matches)}))"
        return where

    def _order(self, object_type: str, defs: dict[str, dict[str, Any]], sorts: Any, p: _Params) -> str:
        if sorts in (None, []):
            return "o.id"
        if not isinstance(sorts, list):
            raise ApiError(400, "Invalid input JSON: sorts must be an array")
        terms = []
        for item in sorts:
            if isinstance(item, str):
                descending = item.startswith("-")
                name = item.lstrip("-")
            elif isinstance(item, dict) and isinstance(item.get("propertyName"), str):
                name = item["propertyName"]
                direction = str(item.get("direction", "ASCENDING")).upper()
                if direction not in {"ASCENDING", "DESCENDING"}:
                    raise ApiError(400, f"Sort direction must be ASCENDING or DESCENDING, got {direction!r}")
                descending = direction == "DESCENDING"
            else:
                raise ApiError(400, "Invalid input JSON: a sort is a property name or {propertyName, direction}")
            expr, _, raw = self._value_sql(object_type, defs, name, p)
            terms.append(f"{expr} {'DESC' if descending else 'ASC'}{' NULLS LAST' if raw else ''}")
        return ", ".join(terms + ["o.id"])

    # --- properties and groups -------------------------------------------------------------

    @staticmethod
    def _property_sql() -> str:
        return (f"json_patch(definition, json_object('createdAt', {_iso_sql('created_at')}, "
                f"'updatedAt', {_iso_sql('updated_at')}, "
                f"'archived', json(CASE WHEN archived THEN 'true' ELSE 'false' END)))")

    def list_properties(self, request: Request) -> Response:
        """GET /crm/v3/properties/{type}: every (or every archived) definition."""
        object_type = _object_type(request.params["object_type"])
        (text,) = request.db.execute(
            f"SELECT json_group_array(json(d)) FROM (SELECT {self._property_sql()} AS d FROM hs_properties "
            "WHERE object_type = ? AND archived = ? ORDER BY name)",
            (object_type, int(_bool_arg(request, "archived")))).fetchone()
        return json_response(200, b'{"results":' + text.encode() + b"}")

    @staticmethod
    def _no_property(object_type: str, name: str) -> ApiError:
        return ApiError(404, f"Unable to find property with name {name} on object type {SINGULAR[object_type]}",
                        category="OBJECT_NOT_FOUND", context={"propertyName": [name]})

    def _property_row(self, con: sqlite3.Connection, object_type: str, name: str) -> bytes:
        row = con.execute(f"SELECT {self._property_sql()} FROM hs_properties WHERE object_type = ? AND name = ?",
                          (object_type, name)).fetchone()
        if row is None:
            raise self._no_property(object_type, name)
        return row[0].encode()

    def get_property(self, request: Request) -> Response:
        """GET /crm/v3/properties/{type}/{name}."""
        object_type = _object_type(request.params["object_type"])
        return json_response(200, self._property_row(request.db, object_type, request.params["property_name"]))

    @staticmethod
    def _check_definition(con: sqlite3.Connection, object_type: str, definition: dict[str, Any]) -> None:
        kind, field = definition.get("type"), definition.get("fieldType")
        if kind not in FIELD_TYPES:
            raise ApiError(400, f"Invalid property type {kind!r}; expected one of {sorted(FIELD_TYPES)}")
        if field not in FIELD_TYPES[kind]:
            raise ApiError(400, f"Invalid fieldType {field!r} for type {kind}; expected one of "
                                f"{sorted(FIELD_TYPES[kind])}")
        group = definition.get("groupName")
        if not con.execute("SELECT 1 FROM hs_property_groups WHERE object_type = ? AND name = ? AND archived = 0",
                           (object_type, group)).fetchone():
            raise ApiError(400, f"Property group {group!r} does not exist for {object_type}",
                           context={"groupName": [str(group)]})
        opts = definition.get("options") or []
        if not isinstance(opts, list) or not all(
                isinstance(o, dict) and isinstance(o.get("label"), str) and isinstance(o.get("value"), str)
                for o in opts):
            raise ApiError(400, "Invalid options: each option needs a string label and value")

    def create_property(self, request: Request) -> Response:
        """POST /crm/v3/properties/{type}: 201; 409 if the name is taken."""
        object_type = _object_type(request.params["object_type"])
        body = _body(request)
        name, label = body.get("name"), body.get("label")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ApiError(400, "Property name must start with a lowercase letter and contain only lowercase "
                                "letters, digits and underscores (at most 100 characters).")
        if not isinstance(label, str) or not label.strip():
            raise ApiError(400, "Property label is required.")
        definition = {
            "name": name, "label": label, "type": body.get("type"), "fieldType": body.get("fieldType"),
            "description": body.get("description", ""), "groupName": body.get("groupName"),
            "options": [{"label": o.get("label"), "value": o.get("value"),
                         "displayOrder": o.get("displayOrder", i), "hidden": bool(o.get("hidden", False)),
                         "description": o.get("description", "")}
                        for i, o in enumerate(body.get("options") or []) if isinstance(o, dict)],
            "displayOrder": body.get("displayOrder", -1), "calculated": False, "externalOptions": False,
            "hasUniqueValue": bool(body.get("hasUniqueValue", False)), "hidden": bool(body.get("hidden", False)),
            "hubspotDefined": False,
            "modificationMetadata": {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False},
            "formField": bool(body.get("formField", False)),
        }
        con = request.db
        self._check_definition(con, object_type, {**definition, "options": body.get("options") or []})
        with write_transaction(con):
            if con.execute("SELECT 1 FROM hs_properties WHERE object_type = ? AND name = ?",
                           (object_type, name)).fetchone():
                raise ApiError(409, f"Property named '{name}' already exists.", category="CONFLICT",
                               context={"name": [name]})
            stamp = store.Clock(con).stamp_ms()
            con.execute("INSERT INTO hs_properties (object_type, name, definition, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?)", (object_type, name, orjson.dumps(definition).decode(), stamp, stamp))
            facts.record(con, "hubspot", "property", f"{object_type}/{name}", "create", stamp // 1000,
                         definition=definition)
        return json_response(201, self._property_row(con, object_type, name))

    def update_property(self, request: Request) -> Response:
        """PATCH /crm/v3/properties/{type}/{name}: change a custom property's label, options, group..."""
        object_type = _object_type(request.params["object_type"])
        name = request.params["property_name"]
        body = _body(request)
        con = request.db
        with write_transaction(con):
            row = con.execute("SELECT definition FROM hs_properties WHERE object_type = ? AND name = ?",
                              (object_type, name)).fetchone()
            if row is None:
                raise self._no_property(object_type, name)
            definition = orjson.loads(row[0])
            if definition.get("modificationMetadata", {}).get("readOnlyDefinition"):
                raise ApiError(400, f"Property {name} is defined by HubSpot and cannot be changed.")
            editable = {"label", "description", "groupName", "options", "displayOrder", "hidden", "formField",
                        "type", "fieldType"}
            definition.update({k: v for k, v in body.items() if k in editable})
            self._check_definition(con, object_type, definition)
            stamp = store.Clock(con).stamp_ms()
            con.execute("UPDATE hs_properties SET definition = ?, updated_at = ? WHERE object_type = ? AND name = ?",
                        (orjson.dumps(definition).decode(), stamp, object_type, name))
            facts.record(con, "hubspot", "property", f"{object_type}/{name}", "update", stamp // 1000,
                         definition=definition)
        return json_response(200, self._property_row(con, object_type, name))

    @staticmethod
    def _group_sql() -> str:
        return ("json_object('name', name, 'label', label, 'displayOrder', display_order, "
                "'archived', json(CASE WHEN archived THEN 'true' ELSE 'false' END))")

    def list_groups(self, request: Request) -> Response:
        """GET /crm/v3/properties/{type}/groups."""
        object_type = _object_type(request.params["object_type"])
        (text,) = request.db.execute(
            f"SELECT json_group_array(json(g)) FROM (SELECT {self._group_sql()} AS g FROM hs_property_groups "
            "WHERE object_type = ? AND archived = ? ORDER BY display_order, name)",
            (object_type, int(_bool_arg(request, "archived")))).fetchone()
        return json_response(200, b'{"results":' + text.encode() + b"}")

    def _group_row(self, con: sqlite3.Connection, object_type: str, name: str) -> bytes:
        row = con.execute(f"SELECT {self._group_sql()} FROM hs_property_groups WHERE object_type = ? AND name = ?",
                          (object_type, name)).fetchone()
        if row is None:
            raise ApiError(404, f"Unable to find property group {name} on object type {SINGULAR[object_type]}",
                           category="OBJECT_NOT_FOUND", context={"groupName": [name]})
        return row[0].encode()

    def get_group(self, request: Request) -> Response:
        """GET /crm/v3/properties/{type}/groups/{name}."""
        object_type = _object_type(request.params["object_type"])
        return json_response(200, self._group_row(request.db, object_type, request.params["group_name"]))

    def create_group(self, request: Request) -> Response:
        """POST /crm/v3/properties/{type}/groups: 201; 409 if the name is taken."""
        object_type = _object_type(request.params["object_type"])
        body = _body(request)
        name, label = body.get("name"), body.get("label")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ApiError(400, "Group name must start with a lowercase letter and contain only lowercase "
                                "letters, digits and underscores.")
        if not isinstance(label, str) or not label.strip():
            raise ApiError(400, "Group label is required.")
        order = _int_value(body.get("displayOrder"), "displayOrder", -1, -1, 2**31)
        con = request.db
        with write_transaction(con):
            if con.execute("SELECT 1 FROM hs_property_groups WHERE object_type = ? AND name = ?",
                           (object_type, name)).fetchone():
                raise ApiError(409, f"A property group named '{name}' already exists.", category="CONFLICT",
                               context={"name": [name]})
            con.execute("INSERT INTO hs_property_groups (object_type, name, label, display_order) "
                        "VALUES (?, ?, ?, ?)", (object_type, name, label, order))
            facts.record(con, "hubspot", "property_group", f"{object_type}/{name}", "create",
                         store.Clock(con).now_ms // 1000, label=label, display_order=order)
        return json_response(201, self._group_row(con, object_type, name))

    # --- associations v4 ---------------------------------------------------------------------

    @staticmethod
    def _association_groups_sql(where: str) -> str:
        return ("SELECT a.from_id AS from_id, a.to_id AS to_id, json_object('toObjectId', a.to_id, "
                "'associationTypes', json_group_array(json_object('category', a.category, 'typeId', a.type_id, "
                f"'label', a.label))) AS t FROM hs_associations a WHERE {where} "
                "GROUP BY a.from_id, a.to_id ORDER BY a.from_id, a.to_id")

    def list_associations(self, request: Request) -> Response:
        """GET /crm/v4/objects/{from}/{id}/associations/{to}: grouped by target, `after` = last id."""
        from_type = _object_type(request.params["from_type"])
        to_type = _object_type(request.params["to_type"])
        object_id = _object_id(request.params["object_id"])
        limit = _int_value(request.arg("limit"), "limit", ASSOCIATIONS_LIMIT_MAX, 1, ASSOCIATIONS_LIMIT_MAX)
        after = _int_value(request.arg("after"), "after", 0, 0, 2**62)
        con = request.db
        with _Snapshot(con):
            targets = [row[0] for row in con.execute(
                "SELECT DISTINCT to_id FROM hs_associations WHERE from_type = ? AND from_id = ? AND to_type = ? "
                "AND to_id > ? ORDER BY to_id LIMIT ?", (from_type, object_id, to_type, after, limit + 1))]
            last = targets[min(limit, len(targets)) - 1] if targets else after
            where = "a.from_type = ? AND a.from_id = ? AND a.to_type = ? AND a.to_id > ? AND a.to_id <= ?"
            (text,) = con.execute(f"SELECT json_group_array(json(t)) FROM ({self._association_groups_sql(where)})",
                                  (from_type, object_id, to_type, after, last)).fetchone()
        body = b'{"results":' + text.encode()
        if len(targets) > limit:
            query = [(k, v) for k, v in request.query if k != "after"] + [("after", str(last))]
            body += b',"paging":' + orjson.dumps({"next": {
                "after": str(last), "link": f"{request.base_url}{request.path}?{urlencode(query)}"}})
        return json_response(200, body + b"}")

    def batch_read_associations(self, request: Request) -> Response:
        """POST /crm/v4/associations/{from}/{to}/batch/read: ids without associations → 207 errors."""
        from_type = _object_type(request.params["from_type"])
        to_type = _object_type(request.params["to_type"])
        inputs = _body(request).get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise ApiError(400, "Invalid input JSON: inputs must be an array of {id}")
        if len(inputs) > ASSOCIATIONS_BATCH_MAX:
            raise ApiError(400, f"Too many inputs: {len(inputs)}. The limit is {ASSOCIATIONS_BATCH_MAX}.")
        wanted = list(dict.fromkeys(str(i.get("id", "")) for i in inputs))
        numeric = orjson.dumps([int(x) for x in wanted if DIGITS_RE.match(x) and not x.startswith("-")]).decode()
        con = request.db
        where = "a.from_type = ? AND a.to_type = ? AND a.from_id IN (SELECT value FROM json_each(?))"
        with _Snapshot(con):
            (text,) = con.execute(
                "SELECT json_group_array(json(r)) FROM (SELECT json_object('from', json_object('id', "
                "CAST(from_id AS TEXT)), 'to', json_group_array(json(t))) AS r "
                f"FROM ({self._association_groups_sql(where)}) GROUP BY from_id ORDER BY from_id)",
                (from_type, to_type, numeric)).fetchone()
            found = {str(row[0]) for row in con.execute(
                f"SELECT DISTINCT a.from_id FROM hs_associations a WHERE {where}", (from_type, to_type, numeric))}
            started = iso_ms(store.Clock(con).now_ms)
        errors = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                   "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                   "message": f"No {SINGULAR[to_type].lower()} is associated with "
                              f"{SINGULAR[from_type].lower()} {x}.",
                   "context": {"fromObjectId": [x], "toObjectType": [SINGULAR[to_type]]}}
                  for x in wanted if x not in found]
        return self._batch_response(200, text.encode(), errors, started)

