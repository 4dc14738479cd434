"""The Stripe API (version 2023-08-16) over the sandbox state, under `/stripe`.

Reads serve the stored documents as they are: a list page is the stored JSON of its records
joined inside the list envelope, so paging costs one indexed query and no per-record parsing.
Writes take Stripe's form encoding (`metadata[k]=v`, `lines[0][amount]=...`), run in one
writer-locked transaction with the events they cause, and honour `Idempotency-Key`.

What a real Stripe account would do on its own (automatic collection, dunning, webhooks) is
not simulated: state changes only through these endpoints and the data generator.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import re
import secrets
import string
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from sandbox import facts
from sandbox import stripe_objects as so
from sandbox.credentials import redact
from sandbox.server.core import (
    ApiError, RatePolicy, Request, Response, VendorApp, json_response, write_transaction,
)
from sandbox.store import Clock

DOCS = "https://stripe.com/docs"
EVENT_RETENTION_S = 30 * 86400
IDEMPOTENCY_TTL_S = 24 * 3600
DEFAULT_DAYS_UNTIL_DUE = 30  # the account's default payment terms for send_invoice
LABELS = {"customer": "customer", "invoice": "invoice", "invoiceitem": "invoiceitem",
          "charge": "charge", "credit_note": "credit note", "dispute": "dispute",
          "event": "event", "tax_rate": "tax rate"}
TAX_TYPES = ("amusement_tax", "communications_tax", "gst", "hst", "igst", "jct", "lease_tax", "pst", "qst",
             "rst", "sales_tax", "service_tax", "vat")
EXPANDABLE = ("cus_", "in_", "ii_", "ch_", "cn_", "du_")
NO_KEY = ("You did not provide an API key. You need to provide your API key in the "
          "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
          "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
          "or we can help at https://support.stripe.com/.")
_SPEC = Path(__file__).resolve().parents[1] / "vendor_specs" / "stripe" / "paths_subset.json"
_KEY = re.compile(r"([A-Za-z0-9_]+)((?:\[[^\[\]]*\])*)")
_INT = re.compile(r"-?[0-9]+")
_CURRENCY = re.compile(r"[a-z]{3}")
_PREFIX = re.compile(r"[A-Z0-9]{3,12}")
_EVENT_TYPE = re.compile(r"[a-z0-9_.*]+")


def _spec_params() -> dict[tuple[str, str], frozenset[str]]:
    """Parameter names Stripe accepts per operation, from the saved OpenAPI subset."""
    out = {}
    for path, operations in orjson.loads(_SPEC.read_bytes())["paths"].items():
        for method, op in operations.items():
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            body = op.get("requestBody", {}).get("content", {})
            form = body.get("application/x-www-form-urlencoded", {}).get("schema", {})
            names.update(form.get("properties", {}))
            out[(method.upper(), path)] = frozenset(names)
    return out


SPEC_PARAMS = _spec_params()


# --- parameters ------------------------------------------------------------------------------

def parse_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket notation to nested values.

    `a=1`, `m[k]=v`, `e[]=x&e[]=y` and `l[0][amount]=5` become `{"a": "1", "m": {"k": "v"},
    "e": ["x", "y"], "l": [{"amount": "5"}]}`. Values stay strings; handlers type them.
    """
    root: dict[str, Any] = {}
    for raw, value in pairs:
        match = _KEY.fullmatch(raw)
        if match is None:
            raise ApiError(400, f"Invalid parameter name: {raw}", param=raw)
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if part == "":
                part = str(len(node))
            if last:
                if part in node:
                    if isinstance(node[part], dict):
                        raise ApiError(400, f"Invalid value for {raw}: expected a hash", param=raw)
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise ApiError(400, f"Invalid value for {raw}", param=raw)
                node = child
    return {key: _listify(value, key == "metadata") for key, value in root.items()}


def _listify(value: Any, keep: bool) -> Any:
    if not isinstance(value, dict):
        return value
    items = {key: _listify(item, False) for key, item in value.items()}
    if not keep and items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


def _flatten(value: Any, prefix: str) -> list[str]:
    if isinstance(value, dict):
        return [name for key, item in value.items() for name in _flatten(item, f"{prefix}[{key}]")]
    if isinstance(value, list):
        return [name for i, item in enumerate(value) for name in _flatten(item, f"{prefix}[{i}]")]
    return [prefix]


def _int(value: Any, param: str, minimum: int | None = None) -> int:
    if not isinstance(value, str) or not _INT.fullmatch(value):
        raise ApiError(400, f"Invalid integer: {value}", param=param)
    number = int(value)
    if minimum is not None and number < minimum:
        raise ApiError(400, f"This value must be greater than or equal to {minimum}.", param=param)
    return number


def _list_of(value: Any, param: str) -> list[str]:
    """An array parameter of ids (`p[]=a&p[]=b`, or `p=""` for none)."""
    if value == "":
        return []
    if not isinstance(value, list):
        raise ApiError(400, f"Invalid array: {param}", param=param)
    return [_str(item, param) for item in value]


def _bool(value: Any, param: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise ApiError(400, f"Invalid boolean: {value}", param=param)


def _str(value: Any, param: str, max_length: int = 5000) -> str:
    if not isinstance(value, str):
        raise ApiError(400, f"Invalid string: {_flatten(value, param)[0]}", param=param)
    if len(value) > max_length:
        raise ApiError(400, f"Invalid {param}: must be at most {max_length} characters", param=param)
    return value


def _nullable_str(value: Any, param: str, max_length: int = 5000) -> str | None:
    """Strings Stripe lets you unset by passing an empty value."""
    text = _str(value, param, max_length)
    return text or None


def _enum(value: Any, param: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ApiError(400, f"Invalid {param}: must be one of {', '.join(options)}", param=param)
    return value


def _currency(value: Any, param: str = "currency") -> str:
    text = _str(value, param).lower()
    if not _CURRENCY.fullmatch(text):
        raise ApiError(400, f"Invalid currency: {value}. Stripe currently supports these "
                            "currencies: usd, eur, gbp, ...", param=param)
    return text


def _metadata(value: Any, current: Mapping[str, str] | None = None) -> dict[str, str]:
    """Stripe's metadata semantics: merge keys, `metadata[k]=` unsets k, `metadata=` clears."""
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid metadata: metadata must be a hash of keys and values",
                       param="metadata")
    merged = dict(current or {})
    for key, item in value.items():
        if not isinstance(item, str):
            raise ApiError(400, f"Invalid value for metadata[{key}]: must be a string",
                           param=f"metadata[{key}]")
        if len(key) > 40:
            raise ApiError(400, "Metadata keys can have a maximum length of 40 characters.",
                           param=f"metadata[{key}]")
        if len(item) > 500:
            raise ApiError(400, "Metadata values can have a maximum length of 500 characters.",
                           param=f"metadata[{key}]")
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(merged) > 50:
        raise ApiError(400, "You can have a maximum of 50 metadata keys.", param="metadata")
    return merged


def _address(value: Any) -> dict[str, Any] | None:
    if value == "":
        return None
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid address: must be a hash", param="address")
    fields = ("city", "country", "line1", "line2", "postal_code", "state")
    for key in value:
        if key not in fields:
            raise ApiError(400, f"Received unknown parameter: address[{key}]", param=f"address[{key}]")
    return {key: _nullable_str(value[key], f"address[{key}]") if key in value else None
            for key in fields}


def _missing(kind: str, object_id: str, param: str, status: int = 400) -> ApiError:
    return ApiError(status, f"No such {LABELS[kind]}: '{object_id}'", param=param,
                    code="resource_missing")


def _state(message: str, code: str | None = None) -> ApiError:
    """A request Stripe refuses because of the object's state (no parameter to blame)."""
    return ApiError(400, message, **({"code": code} if code else {}))


def _request_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "req_" + "".join(secrets.choice(alphabet) for _ in range(14))


# --- write context ---------------------------------------------------------------------------

@dataclasses.dataclass
class Ctx:
    """One write request: its connection, stamp and request id, the documents it changes
    (written together at the end, so the request costs one `seq` lookup) and its events."""

    con: Any
    request_id: str
    now: int
    idempotency_key: str | None
    changed: dict[str, tuple[dict[str, Any], list[dict[str, Any]] | None]] = \
        dataclasses.field(default_factory=dict)
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)  # customers to delete

    def load(self, kind: str, object_id: Any, param: str, status: int = 400) -> dict[str, Any]:
        """The object as this request last left it; a resource_missing error if absent."""
        object_id = _str(object_id, param)
        doc = self.changed[object_id][0] if object_id in self.changed else so.load(self.con, object_id)
        if doc is None or doc["object"] != kind or doc.get("deleted"):
            raise _missing(kind, object_id, param, status)
        return doc

    def save(self, doc: dict[str, Any], lines: list[dict[str, Any]] | None = None) -> None:
        """Mark `doc` (and, for invoices and credit notes, its full `lines`) for writing."""
        if lines is None and doc["id"] in self.changed:
            lines = self.changed[doc["id"]][1]
        self.changed[doc["id"]] = (doc, lines)

    def flush(self) -> None:
        """Write the changed documents, then the events, in the request's transaction."""
        so.put_objects(self.con, [doc for doc, _ in self.changed.values()],
                       {key: lines for key, (_, lines) in self.changed.items() if lines is not None})
        for customer_id in self.deleted:
            so.delete_customer(self.con, customer_id)
        so.add_events(self.con, self.events)

    def emit(self, type: str, doc: Mapping[str, Any],
             previous: Mapping[str, Any] | None = None) -> None:
        """Record an event with a snapshot of `doc` as it is now."""
        self.events.append(so.event(
            id=so.stripe_id("evt", self.request_id, len(self.events)), type=type,
            created=self.now, data_object=orjson.loads(orjson.dumps(doc)),
            previous_attributes=previous, request_id=self.request_id,
            idempotency_key=self.idempotency_key))

    def updated(self, type: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Emit `type` (a `*.updated` event) if anything changed, with previous_attributes."""
        previous = {key: before.get(key) for key, value in after.items()
                    if key != "lines" and before.get(key) != value}
        if previous:
            self.emit(type, after, previous)


def _snapshot(doc: Mapping[str, Any]) -> dict[str, Any]:
    return orjson.loads(orjson.dumps(doc))


def _record_update(ctx: Ctx, doc: dict[str, Any], before: dict[str, Any]) -> None:
    """Record the fields an update changed, so `advance` keeps them as written."""
    fields = {k: v for k, v in doc.items() if k != "metadata" and before.get(k) != v}
    metadata = {k: doc["metadata"].get(k) for k in set(doc["metadata"]) | set(before["metadata"] or {})
                if (before["metadata"] or {}).get(k) != doc["metadata"].get(k)}
    facts.record(ctx.con, "stripe", doc["object"], doc["id"], "update", ctx.now, fields=fields, metadata=metadata)


# --- the app -----------------------------------------------------------------------------------

ListFilter = Callable[[Any], tuple[str, list[Any]]]


class StripeApp(VendorApp):
    """Customers, invoices (+ lines, items), charges, credit notes, disputes and events."""

    name = "stripe"
    prefix = "stripe"

    def register(self) -> None:
        route = self.route
        route("GET", "/v1/customers", self.list_customers)
        route("POST", "/v1/customers", self._write(self.create_customer))
        route("GET", "/v1/customers/{id}", self._retrieve("customer"))
        route("POST", "/v1/customers/{id}", self._write(self.update_customer))
        route("DELETE", "/v1/customers/{id}", self._write(self.delete_customer))
        route("GET", "/v1/invoiceitems", self.list_invoiceitems)
        route("POST", "/v1/invoiceitems", self._write(self.create_invoiceitem))
        route("GET", "/v1/invoiceitems/{id}", self._retrieve("invoiceitem"))
        route("GET", "/v1/invoices", self.list_invoices)
        route("POST", "/v1/invoices", self._write(self.create_invoice))
        route("GET", "/v1/invoices/{id}", self._retrieve("invoice"))
        route("POST", "/v1/invoices/{id}", self._write(self.update_invoice))
        route("GET", "/v1/invoices/{id}/lines", self.list_invoice_lines)
        route("POST", "/v1/invoices/{id}/finalize", self._write(self.finalize_invoice))
        route("POST", "/v1/invoices/{id}/pay", self._write(self.pay_invoice))
        route("POST", "/v1/invoices/{id}/void", self._write(self.void_invoice))
        route("POST", "/v1/invoices/{id}/mark_uncollectible",
              self._write(self.mark_uncollectible))
        route("GET", "/v1/charges", self.list_charges)
        route("GET", "/v1/charges/{id}", self._retrieve("charge"))
        route("GET", "/v1/credit_notes", self.list_credit_notes)
        route("POST", "/v1/credit_notes", self._write(self.create_credit_note))
        route("GET", "/v1/credit_notes/{id}", self._retrieve("credit_note"))
        route("GET", "/v1/credit_notes/{id}/lines", self.list_credit_note_lines)
        route("POST", "/v1/credit_notes/{id}/void", self._write(self.void_credit_note))
        route("GET", "/v1/tax_rates", self.list_tax_rates)
        route("POST", "/v1/tax_rates", self._write(self.create_tax_rate))
        route("GET", "/v1/tax_rates/{id}", self._retrieve("tax_rate"))
        route("GET", "/v1/disputes", self.list_disputes)
        route("GET", "/v1/disputes/{id}", self._retrieve("dispute"))
        route("GET", "/v1/events", self.list_events)
        route("GET", "/v1/events/{id}", self.get_event)

    # --- vendor hooks ----------------------------------------------------------------------

    def _api_key(self, request: Request) -> str | None:
        header = (request.headers.get("Authorization") or "").strip()
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return value or None
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return value  # `Authorization: Basic <api_key>` is accepted as well
            return decoded.partition(":")[0] or None
        return None

    def authenticate(self, request: Request) -> Response | None:
        key = self._api_key(request)
        if key is None:
            return self.error(401, NO_KEY)
        if not secrets.compare_digest(key.encode(), self.credentials["api_key"].encode()):
            return self.error(401, f"Invalid API Key provided: {redact(key)}")
        version = request.headers.get("Stripe-Version")
        if version and version != so.API_VERSION:
            return self.error(400, f"This sandbox serves Stripe API version {so.API_VERSION} "
                                   f"only; the request asked for {version}.",
                              param="Stripe-Version")
        return None

    def error(self, status: int, message: str, **fields: Any) -> Response:
        request_id = fields.pop("request_id", None) or _request_id()
        match = re.fullmatch(r"Unable to find a route for (\w+) (\S+)", message)
        if match is None:
            match = re.fullmatch(r"(\w+) is not allowed on (\S+)", message)
        if match is not None:
            message = (f"Unrecognized request URL ({match.group(1)}: {match.group(2)}). Please "
                       f"see {DOCS} or we can help at https://support.stripe.com/.")
        body: dict[str, Any] = {}
        code = fields.get("code")
        if code:
            body["code"] = code
            body["doc_url"] = f"{DOCS}/error-codes/{code.replace('_', '-')}"
        body["message"] = message
        if fields.get("param"):
            body["param"] = fields["param"]
        body["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
        body["type"] = fields.get("type") or ("api_error" if status >= 500 else "invalid_request_error")
        return json_response(status, {"error": body}, self._headers(request_id))

    def rate_policies(self, request: Request) -> list[RatePolicy]:
        key = self._api_key(request) or ""
        if key.startswith(("sk_live_", "rk_live_")):
            return [RatePolicy("live_mode_requests_per_second", 100, 1.0)]
        return [RatePolicy("test_mode_requests_per_second", 25, 1.0)]

    def rate_limited(self, policy: RatePolicy, retry_after: int) -> Response:
        response = self.error(429, "Request rate limit exceeded. Learn more about rate limits "
                                   f"here {DOCS}/rate-limits.", code="rate_limit")
        response.headers["Retry-After"] = str(retry_after)
        return response

    @staticmethod
    def _headers(request_id: str) -> dict[str, str]:
        return {"Request-Id": request_id, "Stripe-Version": so.API_VERSION}

    def _ok(self, body: bytes, request_id: str | None = None) -> Response:
        return json_response(200, body, self._headers(request_id or _request_id()))

    # --- parameters ------------------------------------------------------------------------

    def _params(self, request: Request, allowed: set[str] | frozenset[str],
                spec_path: str) -> dict[str, Any]:
        """Parsed parameters; unknown ones are refused as Stripe refuses them."""
        pairs = list(request.query)
        if request.method == "POST":
            pairs += request.form()
        params = parse_params(pairs)
        spec = SPEC_PARAMS.get((request.method, spec_path), frozenset())
        for name in params:
            if name in allowed:
                continue
            if name in spec:
                raise ApiError(400, f"The Concord sandbox does not support the parameter "
                                    f"'{name}' on {request.method} {spec_path}.", param=name)
            raise ApiError(400, f"Received unknown parameter: {name}", param=name)
        if "expand" in params:
            expand = params["expand"]
            if isinstance(expand, str):
                expand = [expand]
            if not isinstance(expand, list) or not all(isinstance(e, str) for e in expand):
                raise ApiError(400, "Invalid array", param="expand")
            params["expand"] = expand
        return params

    # --- reads -----------------------------------------------------------------------------

    def _retrieve(self, kind: str) -> Callable[[Request], Response]:
        spec_path = {"customer": "/v1/customers/{customer}", "invoice": "/v1/invoices/{invoice}",
                     "invoiceitem": "/v1/invoiceitems/{invoiceitem}",
                     "charge": "/v1/charges/{charge}", "credit_note": "/v1/credit_notes/{id}",
                     "dispute": "/v1/disputes/{dispute}", "tax_rate": "/v1/tax_rates/{tax_rate}"}[kind]

        def handler(request: Request) -> Response:
            params = self._params(request, {"expand"}, spec_path)
            object_id = request.params["id"]
            row = request.db.execute("SELECT doc FROM stripe_objects WHERE id = ? AND object = ?",
                                     (object_id, kind)).fetchone()
            if row is None and kind == "customer":  # a deleted customer is retrieved as its tombstone
                row = request.db.execute("SELECT doc FROM stripe_objects WHERE id = ? AND object = "
                                         "'deleted_customer'", (object_id,)).fetchone()
            if row is None:
                raise _missing(kind, object_id, "id", 404)
            if params.get("expand"):
                doc = orjson.loads(row[0])
                self._expand(request.db, doc, params["expand"])
                return self._ok(orjson.dumps(doc))
            return self._ok(row[0].encode())

        return handler

    def _expand(self, con: Any, doc: dict[str, Any], paths: list[str]) -> None:
        for path in paths:
            self._expand_path(con, doc, path.split("."), path)

    def _expand_path(self, con: Any, node: dict[str, Any], parts: list[str], path: str) -> None:
        head, rest = parts[0], parts[1:]
        if not isinstance(node, dict) or head not in node:
            raise ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
        value = node[head]
        if isinstance(value, str):
            loaded = so.load(con, value) if value.startswith(EXPANDABLE) else None
            if loaded is None:
                raise ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
            node[head] = value = loaded
        elif not rest and value is not None and not isinstance(value, dict):
            raise ApiError(400, f"This property cannot be expanded ({path}).", param="expand")
        if rest and value is not None:
            self._expand_path(con, value, rest, path)

    def _page(self, request: Request, *, table: str, where: list[str], args: list[Any],
              params: dict[str, Any], url: str, label: str,
              cursor_where: str, cursor_args: list[Any], order: tuple[str, ...]) -> Response:
        """One page of a list: `where` selects the records, `order` their columns newest (or
        first) first; cursors are object ids looked up with `cursor_where`."""
        limit = _int(params["limit"], "limit") if "limit" in params else 10
        if limit < 1:
            raise ApiError(400, "This value must be greater than or equal to 1.", param="limit")
        if limit > 100:
            raise ApiError(400, "This value must be less than or equal to 100.", param="limit")
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise ApiError(400, "You may only specify one of these parameters: "
                                "ending_before, starting_after.", param="ending_before")
        cursor_param = "starting_after" if after is not None else "ending_before"
        cursor = after if after is not None else before
        backwards = before is not None
        newest_first = order != ("seq",)  # lines keep document order, first line first
        ascending = backwards == newest_first
        where, args = list(where), list(args)
        if cursor is not None:
            cursor = _str(cursor, cursor_param)
            row = request.db.execute(
                f"SELECT {', '.join(order)} FROM {table} WHERE {cursor_where} AND id = ?",
                [*cursor_args, cursor]).fetchone()
            if row is None:
                raise ApiError(400, f"No such {label}: '{cursor}'", param=cursor_param,
                               code="resource_missing")
            op = ">" if ascending else "<"
            if newest_first:
                where.append(f"(created, seq) {op} (?, ?)")
                args.extend(row)
            else:
                where.append(f"seq {op} ?")
                args.append(row[0])
        direction = "ASC" if ascending else "DESC"
        sql = (f"SELECT doc FROM {table} WHERE {' AND '.join(where) or '1'} "
               f"ORDER BY {', '.join(f'{col} {direction}' for col in order)} LIMIT ?")
        docs = [doc for (doc,) in request.db.execute(sql, [*args, limit + 1])]
        has_more = len(docs) > limit
        docs = docs[:limit]
        if backwards:
            docs.reverse()
        expand = params.get("expand")
        if expand:
            items = [orjson.loads(doc) for doc in docs]
            for path in expand:
                if not path.startswith("data."):
                    raise ApiError(400, f"This property cannot be expanded ({path}).",
                                   param="expand")
                for item in items:
                    self._expand_path(request.db, item, path.split(".")[1:], path)
            return self._ok(orjson.dumps({"object": "list", "data": items,
                                          "has_more": has_more, "url": url}))
        body = (f'{{"object":"list","data":[{",".join(docs)}],'
                f'"has_more":{"true" if has_more else "false"},"url":"{url}"}}')
        return self._ok(body.encode())

    def _list(self, request: Request, kind: str, spec_path: str,
              filters: Mapping[str, ListFilter]) -> Response:
        params = self._params(request, {"limit", "starting_after", "ending_before", "expand",
                                        *filters}, spec_path)
        where, args = ["object = ?"], [kind]
        for name, build in filters.items():
            if name in params:
                clause, values = build(params[name])
                where.append(clause)
                args.extend(values)
        return self._page(request, table="stripe_objects", where=where, args=args,
                          params=params, url=spec_path, label=LABELS[kind],
                          cursor_where="object = ?", cursor_args=[kind],
                          order=("created", "seq"))

    def list_customers(self, request: Request) -> Response:
        return self._list(request, "customer", "/v1/customers", {
            "created": _range("created", "created"),
            "email": _json_eq("email", 512),
        })

    def list_invoices(self, request: Request) -> Response:
        return self._list(request, "invoice", "/v1/invoices", {
            "created": _range("created", "created"),
            "customer": _column_eq("customer"),
            "status": _enum_filter("status", "status", so.INVOICE_STATUSES),
            "collection_method": _enum_filter(
                "json_extract(doc, '$.collection_method')", "collection_method",
                ("charge_automatically", "send_invoice")),
            "due_date": _range("json_extract(doc, '$.due_date')", "due_date"),
            "subscription": _json_eq("subscription"),
        })

    def list_invoiceitems(self, request: Request) -> Response:
        return self._list(request, "invoiceitem", "/v1/invoiceitems", {
            "created": _range("created", "created"),
            "customer": _column_eq("customer"),
            "invoice": _column_eq("invoice"),
            "pending": lambda value: ("invoice IS NULL" if _bool(value, "pending")
                                      else "invoice IS NOT NULL", []),
        })

    def list_charges(self, request: Request) -> Response:
        return self._list(request, "charge", "/v1/charges", {
            "created": _range("created", "created"),
            "customer": _column_eq("customer"),
            "payment_intent": _json_eq("payment_intent"),
            "transfer_group": _json_eq("transfer_group"),
        })

    def list_credit_notes(self, request: Request) -> Response:
        return self._list(request, "credit_note", "/v1/credit_notes", {
            "customer": _column_eq("customer"),
            "invoice": _column_eq("invoice"),
        })

    def list_tax_rates(self, request: Request) -> Response:
        return self._list(request, "tax_rate", "/v1/tax_rates", {
            "created": _range("created", "created"),
            "active": lambda value: ("json_extract(doc, '$.active') = ?", [int(_bool(value, "active"))]),
            "inclusive": lambda value: ("json_extract(doc, '$.inclusive') = ?", [int(_bool(value, "inclusive"))]),
        })

    def list_disputes(self, request: Request) -> Response:
        return self._list(request, "dispute", "/v1/disputes", {
            "created": _range("created", "created"),
            "charge": _column_eq("charge"),
            "payment_intent": _json_eq("payment_intent"),
        })

    def _lines(self, request: Request, kind: str, spec_path: str, url: str) -> Response:
        params = self._params(request, {"limit", "starting_after", "ending_before", "expand"},
                              spec_path)
        parent = request.params["id"]
        if request.db.execute("SELECT 1 FROM stripe_objects WHERE id = ? AND object = ?",
                              (parent, kind)).fetchone() is None:
            raise _missing(kind, parent, "id", 404)
        label = "invoice line item" if kind == "invoice" else "credit note line item"
        return self._page(request, table="stripe_invoice_lines", where=["invoice = ?"],
                          args=[parent], params=params, url=url.format(parent), label=label,
                          cursor_where="invoice = ?", cursor_args=[parent], order=("seq",))

    def list_invoice_lines(self, request: Request) -> Response:
        return self._lines(request, "invoice", "/v1/invoices/{invoice}/lines",
                           "/v1/invoices/{}/lines")

    def list_credit_note_lines(self, request: Request) -> Response:
        return self._lines(request, "credit_note", "/v1/credit_notes/{credit_note}/lines",
                           "/v1/credit_notes/{}/lines")

    def _event_cutoff(self, request: Request) -> int:
        return Clock(request.db).now_ms // 1000 - EVENT_RETENTION_S

    def list_events(self, request: Request) -> Response:
        params = self._params(request, {"limit", "starting_after", "ending_before", "expand",
                                        "created", "type", "types"}, "/v1/events")
        cutoff = self._event_cutoff(request)
        where, args = ["created >= ?"], [cutoff]
        if "created" in params:
            clause, values = _range("created", "created")(params["created"])
            where.append(clause)
            args.extend(values)
        if "type" in params and "types" in params:
            raise ApiError(400, "You may only specify one of these parameters: type, types.",
                           param="type")
        if "type" in params:
            pattern = _str(params["type"], "type")
            if not _EVENT_TYPE.fullmatch(pattern):
                raise ApiError(400, f"Invalid type: {pattern}", param="type")
            where.append("type GLOB ?")
            args.append(pattern)
        if "types" in params:
            types = params["types"]
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise ApiError(400, "Invalid array", param="types")
            if len(types) > 20:
                raise ApiError(400, "Invalid types: must contain at most 20 event types",
                               param="types")
            where.append(f"type IN ({', '.join('?' * len(types))})")
            args.extend(types)
        return self._page(request, table="stripe_events", where=where, args=args,
                          params=params, url="/v1/events", label="event",
                          cursor_where="created >= ?", cursor_args=[cutoff],
                          order=("created", "seq"))

    def get_event(self, request: Request) -> Response:
        params = self._params(request, {"expand"}, "/v1/events/{id}")
        event_id = request.params["id"]
        row = request.db.execute("SELECT doc FROM stripe_events WHERE id = ? AND created >= ?",
                                 (event_id, self._event_cutoff(request))).fetchone()
        if row is None:
            raise _missing("event", event_id, "id", 404)
        if params.get("expand"):
            doc = orjson.loads(row[0])
            self._expand(request.db, doc, params["expand"])
            return self._ok(orjson.dumps(doc))
        return self._ok(row[0].encode())

    # --- writes ------------------------------------------------------------------------------

    def _write(self, action: Callable[[Ctx, str | None, dict[str, Any]], dict[str, Any]]
               ) -> Callable[[Request], Response]:
        """Wrap a state change: parameters, idempotency, one transaction, events, response."""
        allowed, spec_path = ACTIONS[action.__name__]

        def handler(request: Request) -> Response:
            params = self._params(request, allowed, spec_path)
            request_id = _request_id()
            key = request.headers.get("Idempotency-Key")
            if key is not None and (not key or len(key) > 255):
                raise ApiError(400, "Idempotency keys must be between 1 and 255 characters.",
                               type="idempotency_error")
            endpoint = f"{request.method} {request.path}"
            digest = hashlib.sha256(orjson.dumps(sorted(
                list(request.query) + (request.form() if request.method == "POST" else [])
            ))).hexdigest()
            con = request.db
            try:
                with write_transaction(con):
                    if key is not None:
                        replay = self._replay(con, key, endpoint, digest, request_id)
                        if replay is not None:
                            return replay
                    ctx = Ctx(con, request_id, Clock(con).stamp_ms() // 1000, key)
                    doc = action(ctx, request.params.get("id"), params)
                    ctx.flush()
                    if params.get("expand"):
                        self._expand(con, doc, params["expand"])
                    body = orjson.dumps(doc)
                    if key is not None:
                        self._remember(con, key, endpoint, digest, 200, body, ctx.now)
                return self._ok(body, request_id)
            except ApiError as exc:
                if key is None or exc.fields.get("param") or exc.fields.get("type"):
                    raise
                response = self.error(exc.status, exc.message, request_id=request_id, **exc.fields)
                with write_transaction(con):
                    now = Clock(con).now_ms // 1000
                    self._remember(con, key, endpoint, digest, exc.status, response.body, now)
                return response

        return handler

    def _replay(self, con: Any, key: str, endpoint: str, digest: str,
                request_id: str) -> Response | None:
        row = con.execute("SELECT request_hash, status, body, created FROM stripe_idempotency "
                          "WHERE key = ?", (key,)).fetchone()
        if row is None or row[3] < Clock(con).now_ms // 1000 - IDEMPOTENCY_TTL_S:
            return None
        first_endpoint, _, first_digest = row[0].rpartition("|")
        if first_endpoint != endpoint:
            raise ApiError(400, "Keys for idempotent requests can only be used for the same "
                                f"endpoint they were first used for ('{endpoint.split()[1]}' vs "
                                f"'{first_endpoint.split()[1]}'). Try using a key other than "
                                f"'{key}' if you meant to execute a different request.",
                           type="idempotency_error")
        if first_digest != digest:
            raise ApiError(400, "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with. Try using a key other "
                                f"than '{key}' if you meant to execute a different request.",
                           type="idempotency_error")
        headers = {**self._headers(request_id), "Idempotent-Replayed": "true"}
        return Response(row[1], row[2].encode(), headers)

    @staticmethod
    def _remember(con: Any, key: str, endpoint: str, digest: str, status: int, body: bytes,
                  now: int) -> None:
        con.execute("DELETE FROM stripe_idempotency WHERE created < ?", (now - IDEMPOTENCY_TTL_S,))
        con.execute("INSERT OR REPLACE INTO stripe_idempotency (key, request_hash, status, body, "
                    "created) VALUES (?, ?, ?, ?, ?)",
                    (key, f"{endpoint}|{digest}", status, body.decode(), now))

    # customers

    def create_tax_rate(self, ctx: Ctx, _: str | None, p: dict[str, Any]) -> dict[str, Any]:
        for required in ("display_name", "inclusive", "percentage"):
            if required not in p:
                raise ApiError(400, f"Missing required param: {required}.", param=required)
        try:
            percentage = Decimal(_str(p["percentage"], "percentage"))
        except InvalidOperation:
            raise ApiError(400, f"Invalid decimal: {p['percentage']}", param="percentage") from None
        if not 0 <= percentage <= 100:
            raise ApiError(400, "The percentage must be between 0 and 100.", param="percentage")
        optional = {name: _nullable_str(p[name], name) for name in ("country", "jurisdiction", "description")
                    if name in p}
        doc = so.tax_rate(
            id=so.stripe_id("txr", ctx.request_id), created=ctx.now,
            display_name=_str(p["display_name"], "display_name", 50), percentage=percentage,
            inclusive=_bool(p["inclusive"], "inclusive"),
            tax_type=_enum(p["tax_type"], "tax_type", TAX_TYPES) if "tax_type" in p else None,
            metadata=_metadata(p["metadata"]) if "metadata" in p else None, **optional)
        ctx.save(doc)
        ctx.emit("tax_rate.created", doc)
        return doc

    def create_customer(self, ctx: Ctx, _: str | None, p: dict[str, Any]) -> dict[str, Any]:
        doc = so.customer(id=so.stripe_id("cus", ctx.request_id), created=ctx.now)
        self._customer_fields(doc, p)
        ctx.save(doc)
        ctx.emit("customer.created", doc)
        return doc

    def delete_customer(self, ctx: Ctx, customer_id: str | None, p: dict[str, Any]) -> dict[str, Any]:
        """Gone from every list, retrieved as a tombstone; its invoices stay (see
        `so.delete_customer`). The event carries the customer as it was."""
        doc = ctx.load("customer", customer_id, "id", 404)
        facts.record(ctx.con, "stripe", "customer", doc["id"], "delete", ctx.now)
        ctx.emit("customer.deleted", doc)
        ctx.deleted.append(doc["id"])
        return {"id": doc["id"], "object": "customer", "deleted": True}

    def update_customer(self, ctx: Ctx, customer_id: str | None, p: dict[str, Any]) -> dict[str, Any]:
        doc = ctx.load("customer", customer_id, "id", 404)
        before = _snapshot(doc)
        self._customer_fields(doc, p)
        if doc != before:
            _record_update(ctx, doc, before)
            ctx.save(doc)
            if doc["metadata"] != before["metadata"]:
                changed = set(doc["metadata"]) | set(before["metadata"])
                ctx.updated("customer.updated", {**before, "metadata": {
                    k: before["metadata"].get(k) for k in changed
                    if before["metadata"].get(k) != doc["metadata"].get(k)}}, doc)
            else:
                ctx.updated("customer.updated", before, doc)
        return doc

    @staticmethod
    def _customer_fields(doc: dict[str, Any], p: dict[str, Any]) -> None:
        for name, limit in (("name", 256), ("email", 512), ("description", 5000), ("phone", 20)):
            if name in p:
                doc[name] = _nullable_str(p[name], name, limit)
        if "metadata" in p:
            doc["metadata"] = _metadata(p["metadata"], doc["metadata"])
        if "address" in p:
            doc["address"] = _address(p["address"])
        if "balance" in p:
            doc["balance"] = _int(p["balance"], "balance")
        if "next_invoice_sequence" in p:
            doc["next_invoice_sequence"] = _int(p["next_invoice_sequence"],
                                                "next_invoice_sequence", 1)
        if "invoice_prefix" in p:
            prefix = _str(p["invoice_prefix"], "invoice_prefix")
            if not _PREFIX.fullmatch(prefix):
                raise ApiError(400, "Invalid invoice_prefix: must be 3-12 uppercase letters or "
                                    "numbers", param="invoice_prefix")
            doc["invoice_prefix"] = prefix
        if "preferred_locales" in p:
            locales = p["preferred_locales"]
            locales = [] if locales == "" else locales
            if not isinstance(locales, list):
                raise ApiError(400, "Invalid array", param="preferred_locales")
            doc["preferred_locales"] = [_str(x, "preferred_locales") for x in locales]
        if "tax_exempt" in p:
            doc["tax_exempt"] = _enum(p["tax_exempt"], "tax_exempt", ("none", "exempt", "reverse"))

    # invoice items

    def create_invoiceitem(self, ctx: Ctx, _: str | None, p: dict[str, Any]) -> dict[str, Any]:
        if "customer" not in p:
            raise ApiError(400, "Missing required param: customer.", param="customer")
        cust = ctx.load("customer", p["customer"], "customer")
        quantity = _int(p["quantity"], "quantity", 0) if "quantity" in p else 1
        unit = _int(p["unit_amount"], "unit_amount") if "unit_amount" in p else None
        if "amount" in p:
            amount = _int(p["amount"], "amount")
        elif unit is not None:
            amount = unit * quantity
        else:
            raise ApiError(400, "Missing required param: amount.", param="amount")
        currency = _currency(p["currency"]) if "currency" in p else cust["currency"] or "usd"
        period = p.get("period", {})
        if not isinstance(period, dict) or set(period) - {"start", "end"}:
            raise ApiError(400, "Invalid period: must be a hash with start and end",
                           param="period")
        invoice = None
        if "invoice" in p:
            invoice = ctx.load("invoice", p["invoice"], "invoice")
            if invoice["status"] != "draft":
                raise _state("You can only add invoice items to draft invoices; invoice "
                             f"{invoice['id']} is {invoice['status']}.", "invoice_already_finalized")
            if invoice["customer"] != cust["id"]:
                raise ApiError(400, f"The invoice {invoice['id']} belongs to customer "
                                    f"{invoice['customer']}, not {cust['id']}.", param="invoice")
            if invoice["currency"] != currency:
                raise ApiError(400, f"The currency of the invoice item ({currency}) must match "
                                    f"the invoice's currency ({invoice['currency']}).",
                               param="currency")
        rates = [ctx.load("tax_rate", rate, "tax_rates") for rate in _list_of(p.get("tax_rates", []), "tax_rates")]
        if any(rate["inclusive"] for rate in rates):
            raise ApiError(400, "The sandbox applies exclusive tax rates only.", param="tax_rates")
        item = so.invoiceitem(
            id=so.stripe_id("ii", ctx.request_id), customer=cust["id"], amount=amount,
            currency=currency, date=ctx.now, quantity=quantity, unit_amount=unit,
            description=_nullable_str(p["description"], "description") if "description" in p else None,
            invoice=invoice["id"] if invoice else None,
            metadata=_metadata(p["metadata"]) if "metadata" in p else None,
            period_start=_int(period["start"], "period[start]") if "start" in period else None,
            period_end=_int(period["end"], "period[end]") if "end" in period else None,
        )
        if "discountable" in p:
            item["discountable"] = _bool(p["discountable"], "discountable")
        item["tax_rates"] = rates
        ctx.save(item)
        ctx.emit("invoiceitem.created", item)
        if invoice is not None:
            before = _snapshot(invoice)
            lines = so.load_lines(ctx.con, invoice["id"]) + [so.line_from_invoiceitem(item)]
            so.set_invoice_lines(invoice, lines)
            ctx.save(invoice, lines)
            ctx.updated("invoice.updated", before, invoice)
        return item

    # invoices

    def create_invoice(self, ctx: Ctx, _: str | None, p: dict[str, Any]) -> dict[str, Any]:
        if "customer" not in p:
            raise ApiError(400, "Missing required param: customer.", param="customer")
        cust = ctx.load("customer", p["customer"], "customer")
        method = _enum(p.get("collection_method", "charge_automatically"), "collection_method",
                       ("charge_automatically", "send_invoice"))
        due_date = self._due_date(p, method, ctx.now)
        behavior = _enum(p.get("pending_invoice_items_behavior", "exclude"),
                         "pending_invoice_items_behavior",
                         ("exclude", "include", "include_and_require"))
        currency = _currency(p["currency"]) if "currency" in p else cust["currency"] or "usd"
        invoice_id = so.stripe_id("in", ctx.request_id)
        items = []
        if behavior != "exclude":
            rows = ctx.con.execute(
                "SELECT doc FROM stripe_objects WHERE object = 'invoiceitem' AND customer = ? "
                "AND invoice IS NULL ORDER BY created DESC, seq DESC", (cust["id"],))
            items = [item for item in (orjson.loads(doc) for (doc,) in rows)
                     if item["currency"] == currency]
            if not items and behavior == "include_and_require":
                raise _state("Nothing to invoice for customer", "invoice_no_customer_line_items")
        for item in items:
            item["invoice"] = invoice_id
            ctx.save(item)
        lines = [so.line_from_invoiceitem(item) for item in items]
        doc = so.invoice(
            id=invoice_id, customer=cust["id"], created=ctx.now, currency=currency, lines=lines,
            collection_method=method, due_date=due_date, customer_name=cust["name"],
            customer_email=cust["email"], customer_address=cust["address"],
            customer_phone=cust["phone"],
            description=_nullable_str(p["description"], "description") if "description" in p else None,
            footer=_nullable_str(p["footer"], "footer") if "footer" in p else None,
            metadata=_metadata(p["metadata"]) if "metadata" in p else None,
            auto_advance=_bool(p["auto_advance"], "auto_advance") if "auto_advance" in p else False,
        )
        ctx.save(doc, lines)
        ctx.emit("invoice.created", doc)
        return doc

    @staticmethod
    def _due_date(p: dict[str, Any], method: str, now: int) -> int | None:
        if "due_date" in p and "days_until_due" in p:
            raise ApiError(400, "You may only specify one of these parameters: days_until_due, "
                                "due_date.", param="due_date")
        for name in ("due_date", "days_until_due"):
            if name in p and method != "send_invoice":
                raise ApiError(400, f"Invalid {name}: can only be set when collection_method is "
                                    "send_invoice.", param=name)
        if "due_date" in p:
            return _int(p["due_date"], "due_date")
        if "days_until_due" in p:
            return now + _int(p["days_until_due"], "days_until_due", 0) * 86400
        return None

    def update_invoice(self, ctx: Ctx, invoice_id: str | None, p: dict[str, Any]) -> dict[str, Any]:
        doc = ctx.load("invoice", invoice_id, "id", 404)
        before = _snapshot(doc)
        status = doc["status"]
        money = {"collection_method", "days_until_due", "due_date"} & set(p)
        if status != "draft" and money and not (money == {"due_date"} and status == "open"):
            raise _state(f"Finalized invoices can't be updated in this way: "
                         f"{', '.join(sorted(money))} can only change on a draft invoice.",
                         "invoice_already_finalized")
        if status in ("paid", "void") and {"description", "footer", "auto_advance"} & set(p):
            raise _state(f"This invoice is {status}; only its metadata can be updated.",
                         "invoice_not_editable")
        if "collection_method" in p:
            doc["collection_method"] = _enum(p["collection_method"], "collection_method",
                                             ("charge_automatically", "send_invoice"))
        if {"due_date", "days_until_due"} & set(p):
            doc["due_date"] = self._due_date(p, doc["collection_method"], doc["created"])
        for name in ("description", "footer"):
            if name in p:
                doc[name] = _nullable_str(p[name], name)
        if "auto_advance" in p:
            doc["auto_advance"] = _bool(p["auto_advance"], "auto_advance")
        if "metadata" in p:
            doc["metadata"] = _metadata(p["metadata"], doc["metadata"])
        if doc != before:
            _record_update(ctx, doc, before)
            ctx.save(doc)
            ctx.updated("invoice.updated", before, doc)
        return doc

    def finalize_invoice(self, ctx: Ctx, invoice_id: str | None, p: dict[str, Any]) -> dict[str, Any]:
        doc = ctx.load("invoice", invoice_id, "id", 404)
        if doc["status"] != "draft":
            raise _state("This invoice is already finalized, you can't re-finalize a "
                         "non-draft invoice.", "invoice_already_finalized")
        if "auto_advance" in p:
            doc["auto_advance"] = _bool(p["auto_advance"], "auto_advance")
        self._finalize(ctx, doc)
        ctx.save(doc)
        return doc

    def _finalize(self, ctx: Ctx, doc: dict[str, Any]) -> None:
        """Draft to open: number from the customer's sequence, due date, snapshot; an
        invoice with nothing due is paid at once."""
        cust = ctx.load("customer", doc["customer"], "customer")
        facts.record(ctx.con, "stripe", "invoice", doc["id"], "finalize", ctx.now, customer=cust["id"])
        doc["number"] = f"{cust['invoice_prefix']}-{cust['next_invoice_sequence']:04d}"
        cust["next_invoice_sequence"] += 1
        cust["currency"] = cust["currency"] or doc["currency"]
        ctx.save(cust)
        doc.update(status="open", effective_at=ctx.now, customer_name=cust["name"],
                   customer_email=cust["email"], customer_phone=cust["phone"],
                   customer_address=cust["address"])
        doc["hosted_invoice_url"], doc["invoice_pdf"] = so.invoice_urls(doc["id"])
        doc["status_transitions"]["finalized_at"] = ctx.now
        if doc["collection_method"] == "send_invoice" and doc["due_date"] is None:
            doc["due_date"] = ctx.now + DEFAULT_DAYS_UNTIL_DUE * 86400
        so.recompute_invoice(doc)
        ctx.emit("invoice.finalized", doc)
        if doc["amount_due"] == 0:
            self._mark_paid(ctx, doc)

    def _mark_paid(self, ctx: Ctx, doc: dict[str, Any]) -> None:
        doc["status"] = "paid"
        doc["status_transitions"]["paid_at"] = ctx.now
        so.recompute_invoice(doc)
        ctx.emit("invoice.paid", doc)

    def pay_invoice(self, ctx: Ctx, invoice_id: str | None, p: dict[str, Any]) -> dict[str, Any]:
        doc = ctx.load("invoice", invoice_id, "id", 404)
        out_of_band = _bool(p["paid_out_of_band"], "paid_out_of_band") if "paid_out_of_band" in p else False
        if doc["status"] == "paid":
            raise _state("Invoice is already paid", "invoice_already_paid")
        if doc["status"] == "void":
            raise _state("This invoice has been voided and can no longer be paid.",
                         "invoice_not_editable")
        if doc["status"] == "draft":
            self._finalize(ctx, doc)
            if doc["status"] == "paid":
                ctx.save(doc)
                return doc
        facts.record(ctx.con, "stripe", "invoice", doc["id"], "pay", ctx.now, out_of_band=out_of_band)
        if out_of_band:
            doc["paid_out_of_band"] = True
            doc["amount_paid"] = doc["amount_due"]
            self._mark_paid(ctx, doc)
        else:
            cust = ctx.load("customer", doc["customer"], "customer")
            charge_id = so.stripe_id("ch", ctx.request_id)
            amount = doc["amount_remaining"]
            charge = so.charge(
                id=charge_id, customer=cust["id"], amount=amount, currency=doc["currency"],
                created=ctx.now, invoice=doc["id"], payment_intent=so.stripe_id("pi", charge_id),
                description="Payment for Invoice", billing_name=cust["name"],
                billing_email=cust["email"], receipt_email=cust["email"])
            ctx.save(charge)
            ctx.emit("charge.succeeded", charge)
            doc.update(charge=charge_id, payment_intent=charge["payment_intent"], attempted=True,
                       attempt_count=doc["attempt_count"] + 1,
                       amount_paid=doc["amount_paid"] + amount)
            self._mark_paid(ctx, doc)
            ctx.emit("invoice.payment_succeeded", doc)
        ctx.save(doc)
        return doc

    def void_invoice(self, ctx: Ctx, invoice_id: str | None, p: dict[str, Any]) -> dict[str, Any]:
        doc = ctx.load("invoice", invoice_id, "id", 404)
        if doc["status"] not in ("open", "uncollectible"):
            raise _state(f"You can only void an invoice whose status is open or uncollectible; "
                         f"this invoice is {doc['status']}.", "invoice_not_editable")
        facts.record(ctx.con, "stripe", "invoice", doc["id"], "void", ctx.now)
        doc["status"] = "void"
        doc["status_transitions"]["voided_at"] = ctx.now
        so.recompute_invoice(doc)
        ctx.save(doc)
        ctx.emit("invoice.voided", doc)
        return doc

    def mark_uncollectible(self, ctx: Ctx, invoice_id: str | None, p: dict[str, Any]) -> dict[str, Any]:
        doc = ctx.load("invoice", invoice_id, "id", 404)
        if doc["status"] != "open":
            raise _state("You can only mark an open invoice as uncollectible; this invoice is "
                         f"{doc['status']}.", "invoice_not_editable")
        facts.record(ctx.con, "stripe", "invoice", doc["id"], "mark_uncollectible", ctx.now)
        doc["status"] = "uncollectible"
        doc["status_transitions"]["marked_uncollectible_at"] = ctx.now
        so.recompute_invoice(doc)
        ctx.save(doc)
        ctx.emit("invoice.marked_uncollectible", doc)
        return doc

    # credit notes

    def create_credit_note(self, ctx: Ctx, _: str | None, p: dict[str, Any]) -> dict[str, Any]:
        if "invoice" not in p:
            raise ApiError(400, "Missing required param: invoice.", param="invoice")
        invoice = ctx.load("invoice", p["invoice"], "invoice")
        if invoice["status"] in ("draft", "void"):
            raise _state(f"You can't issue a credit note for a {invoice['status']} invoice; "
                         "credit notes adjust finalized invoices.", "invoice_not_editable")
        note_id = so.stripe_id("cn", ctx.request_id)
        lines = self._credit_lines(ctx, invoice, note_id, p)
        total = sum(line["amount"] for line in lines)
        if total <= 0:
            raise ApiError(400, "The credit note total must be greater than 0.", param="amount")
        extra = {name: _int(p[name], name, 0) if name in p else 0
                 for name in ("out_of_band_amount", "credit_amount", "refund_amount")}
        pre = invoice["status"] in ("open", "uncollectible")
        before = _snapshot(invoice)
        refund = balance_txn = None
        if pre:
            if any(extra.values()):
                name = next(k for k, v in extra.items() if v)
                raise ApiError(400, f"{name} can only be used when the invoice is paid.", param=name)
            if total > invoice["amount_remaining"]:
                raise _state(f"The credit note total ({total}) must not exceed the amount "
                             f"remaining on the invoice ({invoice['amount_remaining']}).")
            invoice["pre_payment_credit_notes_amount"] += total
            so.recompute_invoice(invoice)
        else:
            available = invoice["amount_paid"] - invoice["post_payment_credit_notes_amount"]
            if total > available:
                raise _state(f"The credit note total ({total}) must not exceed the amount paid "
                             f"on the invoice that has not been credited yet ({available}).")
            if sum(extra.values()) != total:
                raise _state(f"The sum of credit amount, refund amount and out of band amount "
                             f"({sum(extra.values())}) must equal the credit note amount ({total}).")
            invoice["post_payment_credit_notes_amount"] += total
            if extra["refund_amount"]:
                refund = self._refund(ctx, invoice, extra["refund_amount"], note_id)
            if extra["credit_amount"]:
                balance_txn = self._credit_balance(ctx, invoice, extra["credit_amount"], note_id)
        count, = ctx.con.execute("SELECT COUNT(*) FROM stripe_objects WHERE object = 'credit_note' "
                                 "AND invoice = ?", (invoice["id"],)).fetchone()
        note = so.credit_note(
            id=note_id, invoice=invoice["id"], customer=invoice["customer"],
            currency=invoice["currency"], created=ctx.now,
            number=f"{invoice['number']}-CN-{count + 1:02d}", lines=lines,
            type="pre_payment" if pre else "post_payment",
            reason=_enum(p["reason"], "reason", ("duplicate", "fraudulent", "order_change",
                                                 "product_unsatisfactory"))
            if "reason" in p else None,
            memo=_nullable_str(p["memo"], "memo") if "memo" in p else None,
            metadata=_metadata(p["metadata"]) if "metadata" in p else None,
            out_of_band_amount=extra["out_of_band_amount"] or None, refund=refund,
            customer_balance_transaction=balance_txn)
        facts.record(ctx.con, "stripe", "credit_note", note_id, "create", ctx.now, invoice=invoice["id"],
                     type=note["type"], amount=note["amount"], refund_amount=extra["refund_amount"],
                     tax=sum(t["amount"] for line in lines for t in line.get("tax_amounts") or []))
        ctx.save(note, lines)
        ctx.emit("credit_note.created", note)
        ctx.save(invoice)
        ctx.updated("invoice.updated", before, invoice)
        if pre and invoice["amount_remaining"] == 0:
            self._mark_paid(ctx, invoice)
            ctx.save(invoice)
        return note

    def _credit_lines(self, ctx: Ctx, invoice: dict[str, Any], note_id: str,
                      p: dict[str, Any]) -> list[dict[str, Any]]:
        """The credit note's lines, from `lines[...]` or a single custom line for `amount`."""
        amount = _int(p["amount"], "amount", 1) if "amount" in p else None
        if "lines" not in p:
            if amount is None:
                raise ApiError(400, "Missing required param: amount or lines.", param="amount")
            return [so.credit_note_line_item(id=so.stripe_id("cnli", note_id, 0), amount=amount,
                                             description="Credit", unit_amount=amount)]
        specs = p["lines"]
        if not isinstance(specs, list) or not specs:
            raise ApiError(400, "Invalid array", param="lines")
        invoice_lines = {line["id"]: line for line in so.load_lines(ctx.con, invoice["id"])}
        lines = []
        for i, spec in enumerate(specs):
            param = f"lines[{i}]"
            if not isinstance(spec, dict):
                raise ApiError(400, f"Invalid hash: {param}", param=param)
            for key in spec:
                if key not in ("type", "invoice_line_item", "amount", "quantity", "unit_amount",
                               "description"):
                    raise ApiError(400, f"Received unknown parameter: {param}[{key}]",
                                   param=f"{param}[{key}]")
            if "type" not in spec:
                raise ApiError(400, f"Missing required param: {param}[type].", param=f"{param}[type]")
            kind = _enum(spec["type"], f"{param}[type]", ("invoice_line_item", "custom_line_item"))
            quantity = _int(spec["quantity"], f"{param}[quantity]", 1) if "quantity" in spec else None
            line_amount = _int(spec["amount"], f"{param}[amount]", 1) if "amount" in spec else None
            description = (_nullable_str(spec["description"], f"{param}[description]")
                           if "description" in spec else None)
            line_id = so.stripe_id("cnli", note_id, i)
            if kind == "invoice_line_item":
                target_id = spec.get("invoice_line_item")
                if target_id is None:
                    raise ApiError(400, f"Missing required param: {param}[invoice_line_item].",
                                   param=f"{param}[invoice_line_item]")
                target = invoice_lines.get(target_id)
                if target is None:
                    raise ApiError(400, f"No such invoice line item: '{target_id}'",
                                   param=f"{param}[invoice_line_item]", code="resource_missing")
                if line_amount is None:
                    unit = target["amount"] // max(target["quantity"] or 1, 1)
                    line_amount = unit * quantity if quantity is not None else target["amount"]
                if line_amount > target["amount"]:
                    raise ApiError(400, f"The amount credited for {target_id} ({line_amount}) "
                                        f"exceeds the line's amount ({target['amount']}).",
                                   param=f"{param}[amount]")
                lines.append(so.credit_note_line_item(
                    id=line_id, amount=line_amount, invoice_line_item=target_id,
                    quantity=quantity or 1, description=description or target["description"]))
            else:
                if "unit_amount" not in spec:
                    raise ApiError(400, f"Missing required param: {param}[unit_amount].",
                                   param=f"{param}[unit_amount]")
                unit = _int(spec["unit_amount"], f"{param}[unit_amount]", 1)
                lines.append(so.credit_note_line_item(
                    id=line_id, amount=unit * (quantity or 1), quantity=quantity or 1,
                    unit_amount=unit, description=description))
        total = sum(line["amount"] for line in lines)
        if amount is not None and amount != total:
            raise ApiError(400, f"The amount ({amount}) must equal the sum of the line amounts "
                                f"({total}).", param="amount")
        return lines

    def _refund(self, ctx: Ctx, invoice: dict[str, Any], amount: int, note_id: str) -> str:
        if not invoice["charge"]:
            raise _state("This invoice was not paid with a charge, so nothing can be refunded; "
                         "use out_of_band_amount or credit_amount instead.")
        charge = ctx.load("charge", invoice["charge"], "refund_amount")
        if amount > charge["amount"] - charge["amount_refunded"]:
            raise ApiError(400, f"Refund amount ({amount}) is greater than unrefunded amount on "
                                f"charge ({charge['amount'] - charge['amount_refunded']})",
                           param="refund_amount")
        before = _snapshot(charge)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        ctx.save(charge)
        ctx.emit("charge.refunded", charge, {key: before[key] for key in ("amount_refunded", "refunded")
                                             if before[key] != charge[key]})
        return so.stripe_id("re", note_id)

    def _credit_balance(self, ctx: Ctx, invoice: dict[str, Any], amount: int, note_id: str) -> str:
        cust = ctx.load("customer", invoice["customer"], "customer")
        before = _snapshot(cust)
        cust["balance"] -= amount
        ctx.save(cust)
        ctx.updated("customer.updated", before, cust)
        return so.stripe_id("cbtxn", note_id)

    def void_credit_note(self, ctx: Ctx, note_id: str | None, p: dict[str, Any]) -> dict[str, Any]:
        note = ctx.load("credit_note", note_id, "id", 404)
        if note["status"] == "void":
            raise _state("This credit note has already been voided.")
        invoice = ctx.load("invoice", note["invoice"], "invoice")
        if invoice["status"] != "open":
            raise _state("You can only void a credit note if the associated invoice is open; "
                         f"invoice {invoice['id']} is {invoice['status']}.")
        facts.record(ctx.con, "stripe", "credit_note", note["id"], "void", ctx.now, invoice=invoice["id"])
        note["status"] = "void"
        note["voided_at"] = ctx.now
        before = _snapshot(invoice)
        invoice["pre_payment_credit_notes_amount"] -= note["amount"]
        so.recompute_invoice(invoice)
        ctx.save(note)
        ctx.emit("credit_note.voided", note)
        ctx.save(invoice)
        ctx.updated("invoice.updated", before, invoice)
        return note


# --- list filters --------------------------------------------------------------------------------

def _range(column: str, param: str) -> ListFilter:
    """`x=123` or `x[gt|gte|lt|lte]=123` on an integer column or expression."""
    operators = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

    def build(value: Any) -> tuple[str, list[Any]]:
        if isinstance(value, str):
            return f"{column} = ?", [_int(value, param)]
        if not isinstance(value, dict) or not value:
            raise ApiError(400, f"Invalid {param}: must be an integer or a hash of gt, gte, lt, lte",
                           param=param)
        clauses, args = [], []
        for key, item in value.items():
            if key not in operators:
                raise ApiError(400, f"Received unknown parameter: {param}[{key}]",
                               param=f"{param}[{key}]")
            clauses.append(f"{column} {operators[key]} ?")
            args.append(_int(item, f"{param}[{key}]"))
        return " AND ".join(clauses), args

    return build


def _column_eq(column: str) -> ListFilter:
    return lambda value: (f"{column} = ?", [_str(value, column)])


def _json_eq(field: str, max_length: int = 5000) -> ListFilter:
    return lambda value: (f"json_extract(doc, '$.{field}') = ?", [_str(value, field, max_length)])


def _enum_filter(column: str, param: str, options: tuple[str, ...]) -> ListFilter:
    return lambda value: (f"{column} = ?", [_enum(value, param, options)])


EXPAND = {"expand"}
ACTIONS: dict[str, tuple[set[str], str]] = {
    "create_customer": ({"name", "email", "description", "phone", "metadata", "address",
                         "balance", "next_invoice_sequence", "invoice_prefix",
                         "preferred_locales", "tax_exempt", *EXPAND}, "/v1/customers"),
    "delete_customer": (set(), "/v1/customers/{customer}"),
    "update_customer": ({"name", "email", "description", "phone", "metadata", "address",
                         "balance", "next_invoice_sequence", "invoice_prefix",
                         "preferred_locales", "tax_exempt", *EXPAND}, "/v1/customers/{customer}"),
    "create_invoiceitem": ({"customer", "amount", "currency", "description", "invoice",
                            "metadata", "period", "quantity", "unit_amount", "discountable",
                            "tax_rates", *EXPAND}, "/v1/invoiceitems"),
    "create_tax_rate": ({"display_name", "inclusive", "percentage", "country", "jurisdiction",
                         "description", "tax_type", "metadata", *EXPAND}, "/v1/tax_rates"),
    "create_invoice": ({"customer", "collection_method", "currency", "days_until_due",
                        "due_date", "description", "footer", "metadata", "auto_advance",
                        "pending_invoice_items_behavior", *EXPAND}, "/v1/invoices"),
    "update_invoice": ({"collection_method", "days_until_due", "due_date", "description",
                        "footer", "metadata", "auto_advance", *EXPAND}, "/v1/invoices/{invoice}"),
    "finalize_invoice": ({"auto_advance", *EXPAND}, "/v1/invoices/{invoice}/finalize"),
    "pay_invoice": ({"paid_out_of_band", *EXPAND}, "/v1/invoices/{invoice}/pay"),
    "void_invoice": (EXPAND, "/v1/invoices/{invoice}/void"),
    "mark_uncollectible": (EXPAND, "/v1/invoices/{invoice}/mark_uncollectible"),
    "create_credit_note": ({"invoice", "amount", "lines", "memo", "metadata", "reason",
                            "out_of_band_amount", "credit_amount", "refund_amount", *EXPAND},
                           "/v1/credit_notes"),
    "void_credit_note": (EXPAND, "/v1/credit_notes/{id}/void"),
}
