"""Writes made through the sandbox's vendor APIs are facts of the firm's world.

The firm is re-simulated from its seed at every `advance`; without this module a Stripe invoice
voided through the API would be projected paid again the next time its simulated life moved on.
Each such write is recorded in the state (`api_facts`), and `apply` rewrites the simulated world
around it before anything is projected or judged: an invoice voided is never paid afterwards (and
finance cancels it in the ERP), one paid out of band is not paid again by card nor recorded twice
in the ERP, one marked uncollectible is not paid afterwards.

Facts cover Stripe's invoice status writes (pay, void, mark uncollectible) and HubSpot property
updates (`hubspot_overlay`: the properties a client wrote stay as written on every record the
simulation projects again) so far.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from sandbox.stripe_objects import stripe_id
from sandbox.world.config import DAY, NEVER
from sandbox.world.firm import PAID, UNCOLLECTIBLE, VOIDED, World

TABLE = """
CREATE TABLE IF NOT EXISTS api_facts (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    system  TEXT NOT NULL,
    object  TEXT NOT NULL,
    id      TEXT NOT NULL,
    action  TEXT NOT NULL,
    at      INTEGER NOT NULL,               -- epoch s, the sandbox clock
    payload TEXT NOT NULL
)
"""
FINANCE_LAG = DAY  # finance follows a billing write in the ERP the next day, inside the SLA


def record(con: sqlite3.Connection, system: str, obj: str, object_id: str, action: str, at: int,
           **payload: Any) -> None:
    record_many(con, [(system, obj, object_id, action, at, payload)])


def record_many(con: sqlite3.Connection, rows: list[tuple[str, str, str, str, int, dict[str, Any]]]) -> None:
    """Record writes (system, object, id, action, at, payload) in the caller's transaction."""
    con.execute(TABLE)
    con.executemany("INSERT INTO api_facts (system, object, id, action, at, payload) VALUES (?, ?, ?, ?, ?, ?)",
                    [(s, o, i, a, int(at), orjson.dumps(p).decode()) for s, o, i, a, at, p in rows])


def read(con: sqlite3.Connection) -> list[dict[str, Any]]:
    con.execute(TABLE)
    rows = con.execute("SELECT system, object, id, action, at, payload FROM api_facts ORDER BY seq").fetchall()
    return [{"system": s, "object": o, "id": i, "action": a, "at": at, **orjson.loads(p)}
            for s, o, i, a, at, p in rows]


def hubspot_overlay(facts: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, str | None]]:
    """(object type, id) -> the properties written through HubSpot's API, the latest value of
    each (None: cleared)."""
    overlay: dict[tuple[str, int], dict[str, str | None]] = {}
    for fact in facts:
        if fact["system"] == "hubspot" and fact["action"] == "update":
            overlay.setdefault((fact["object"], int(fact["id"])), {}).update(fact["properties"])
    return overlay


def apply(world: World, facts: list[dict[str, Any]]) -> None:
    """Rewrite the simulated world so that it agrees with every fact, in place (before anything
    is derived from it)."""
    inv = world.invoices
    if not facts or not len(inv):
        return
    index = {stripe_id("in", world.seed, "invoice", i): i for i in range(len(inv))}
    for fact in facts:
        if fact["system"] != "stripe" or fact["object"] != "invoice" or fact["id"] not in index:
            continue  # an invoice the API created lives in the API's state only
        i, at = index[fact["id"]], int(fact["at"])
        inv["api_written_at"][i] = at
        if fact["action"] == "void":
            _void(inv, i, at)
        elif fact["action"] == "pay":
            _pay(inv, i, at, out_of_band=fact.get("out_of_band", False))
        elif fact["action"] == "mark_uncollectible":
            _write_off(inv, i, at)


def _cancel_after(inv, i: int, at: int) -> None:
    """What the client and finance would have done after `at` and now never do."""
    for column in ("paid_at", "disputed_at", "dispute_review_at", "dispute_closed_at"):
        if inv[column][i] > at:
            inv[column][i] = NEVER
    if inv["cn_after_payment"][i] and inv["cn_at"][i] > at:
        inv["cn_at"][i], inv["cn_amount"][i], inv["cn_tax"][i] = NEVER, 0, 0
        inv["erp_cn_at"][i] = NEVER
    late = inv["erp_instalment_at"][i] > at
    inv["erp_instalment_at"][i][late] = NEVER
    inv["instalment_amount"][i][late] = 0


def _void(inv, i: int, at: int) -> None:
    _cancel_after(inv, i, at)
    inv["outcome"][i] = VOIDED
    inv["voided_at"][i] = at
    inv["stripe_paid_at"][i] = NEVER
    inv["uncollectible_at"][i] = NEVER if inv["uncollectible_at"][i] > at else inv["uncollectible_at"][i]
    if inv["erp_paid_at"][i] > at:
        inv["erp_paid_at"][i] = NEVER
    if inv["erp_posted_at"][i] < NEVER:
        inv["erp_cancel_at"][i] = max(at, int(inv["erp_posted_at"][i])) + FINANCE_LAG


def _write_off(inv, i: int, at: int) -> None:
    """Billing gave up on it: the client, as the firm now expects, does not pay it."""
    _cancel_after(inv, i, at)
    inv["outcome"][i] = UNCOLLECTIBLE
    inv["uncollectible_at"][i] = at
    inv["stripe_paid_at"][i] = NEVER
    if inv["erp_paid_at"][i] > at:
        inv["erp_paid_at"][i] = NEVER


def _pay(inv, i: int, at: int, *, out_of_band: bool) -> None:
    _cancel_after(inv, i, at)
    inv["paid_at"][i] = inv["stripe_paid_at"][i] = at
    inv["paid_out_of_band"][i] = out_of_band
    if inv["instalments"][i] and not (inv["erp_instalment_at"][i] < NEVER).any():
        inv["instalments"][i] = 0
    if inv["erp_paid_at"][i] > at and inv["erp_posted_at"][i] < NEVER and not inv["instalments"][i]:
        inv["erp_paid_at"][i] = max(at, int(inv["erp_posted_at"][i])) + FINANCE_LAG
    if inv["uncollectible_at"][i] > at:
        inv["uncollectible_at"][i] = NEVER
    inv["outcome"][i] = PAID
