"""Rows finance writes to the ERP database directly are facts too.

The ERP has no API here: finance edits its tables, and Odoo stamps every row it writes with the
acting user (`write_uid`) and time (`write_date`). The sandbox writes as the ERP's integration
user (`ADMIN_UID`); a row last written by anyone else is that user's from then on: `advance`
never overwrites it, nor the invoice-payment links of an invoice or payment they wrote, and the
simulation's own later changes to it are dropped. Nothing needs recording: the rows say who wrote
them, so this holds across crashes and restarts. Two limits, both of the missing API rather than
of the rule: a row deleted by hand leaves no trace (a later change the simulation makes to it
writes it again), and a row inserted by hand under an id the simulation later uses keeps the
user's version.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from sandbox import erp_schema

ADMIN_UID = 2  # the user the sandbox writes the ERP as
LINKS = {"account_move__account_payment": {"invoice_id": "account_move", "payment_id": "account_payment"}}


def users_rows(conn: Connection) -> dict[str, set[int]]:
    """Table -> ids of the rows last written by an ERP user rather than the sandbox."""
    rows: dict[str, set[int]] = {}
    for table in erp_schema.metadata.sorted_tables:
        if "write_uid" in table.c and [c.name for c in table.primary_key.columns] == ["id"]:
            ids = set(conn.execute(select(table.c.id).where(
                or_(table.c.write_uid.is_(None), table.c.write_uid != ADMIN_UID))).scalars())
            if ids:
                rows[table.name] = ids
    return rows


def keep_theirs(table: str, rows: list[dict[str, Any]], theirs: dict[str, set[int]]) -> list[dict[str, Any]]:
    """The projected rows that would not overwrite a row an ERP user wrote."""
    if not theirs:
        return rows
    if table in LINKS:
        return [r for r in rows if not any(r[column] in theirs.get(target, ()) for column, target in LINKS[table].items())]
    ids = theirs.get(table)
    return [r for r in rows if r.get("id") not in ids] if ids else rows
