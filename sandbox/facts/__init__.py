"""Writes made through the sandbox's vendor APIs are facts of the firm's world.

The firm is re-simulated from its seed at every `advance`; without this package a Stripe invoice
voided through the API would be projected paid again the next time its simulated life moved on,
and a Harvest time entry deleted through the API would come back when the firm approved its
week. Each write is recorded in the state (`api_facts`, in the write's own transaction, stamped
with the sandbox clock) and `advance` honours it: `amend_time` rewrites the time entries while
the firm is simulated (so what is billed from them follows), `apply` rewrites the simulated
world before anything is projected or judged, and the projections lay the written fields over
what they write (`hubspot_writes`, `harvest_notes`, Stripe's overlay).

What each write means across `advance`, one module per system:
- `stripe`: an invoice voided is never paid afterwards (finance cancels it in the ERP), one paid
  out of band is not paid again nor recorded twice in the ERP, one marked uncollectible is not
  paid afterwards (credit notes, field updates and created objects: see the module).
- `hubspot`: properties written stay as written; a record archived stays archived (its
  properties still following the firm); created records, their associations, and property and
  group definitions are the API's and never overwritten.
- `harvest`: a time entry deleted stays deleted and is never approved nor invoiced; one edited
  keeps what was written (hours, notes, date, project, task and what follows) and is invoiced as
  written, the firm still approving it; one created is left as created; one marked invoiced by
  hand (in the web app: the API has no such write) stays marked.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from sandbox.facts import harvest, stripe
from sandbox.facts.harvest import amend_time, deleted_entries, harvest_notes
from sandbox.facts.hubspot import HubSpotWrites, hubspot_overlay, hubspot_writes
from sandbox.world.firm import World

__all__ = ["HubSpotWrites", "amend_time", "apply", "deleted_entries", "harvest_notes", "hubspot_overlay",
           "hubspot_writes", "read", "record", "record_many"]

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


def apply(world: World, facts: list[dict[str, Any]]) -> None:
    """Rewrite the simulated world so that it agrees with every fact, in place (before anything
    is derived from it)."""
    stripe.apply(world, facts)
    harvest.apply(world, facts)
