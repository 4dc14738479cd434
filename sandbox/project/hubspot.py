"""The CRM as the firm's account team keeps it: companies, contacts, deals and their links."""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np
import orjson

from sandbox import facts, hubspot_properties, store
from sandbox.project import Window, iso_millis
from sandbox.world import names
from sandbox.world.config import CURRENCIES, DEAL_STAGES, ENGAGEMENT_TYPES, NEVER, SERVICES
from sandbox.world.derived import (
    HS_COMPANY_BASE, HS_CONTACT_BASE, HS_DEAL_BASE, HS_DUPLICATE_COMPANY_BASE, HS_MERGED_COMPANY_BASE, OWNER_BASE,
    Derived,
)
from sandbox.world.codes import CF_DUPLICATE, DUP_HUBSPOT
from sandbox.world.firm import World

# HubSpot's association type ids (HUBSPOT_DEFINED): primary and unlabeled, each direction.
CONTACT_TO_COMPANY = ((1, "Primary"), (279, None))
COMPANY_TO_CONTACT = ((2, "Primary"), (280, None))
DEAL_TO_COMPANY = ((5, "Primary"), (341, None))
COMPANY_TO_DEAL = ((6, "Primary"), (342, None))

UPSERT = """
INSERT INTO hs_objects (object_type, id, properties, created_at, updated_at, archived, archived_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (object_type, id) DO UPDATE SET
    properties = json_patch(hs_objects.properties, excluded.properties),
    updated_at = MAX(hs_objects.updated_at, excluded.updated_at),
    archived = excluded.archived,
    archived_at = excluded.archived_at
"""


def project(world: World, derived: Derived, window: Window, con: sqlite3.Connection,
            written: list[dict[str, Any]] = ()) -> dict[str, int]:
    """Write what the CRM shows at the window's end for records that changed within it, the API's
    `written` facts laid over it."""
    if window.is_full:
        hubspot_properties.install(con, window.end * 1000)
    writes = facts.hubspot_writes(list(written))
    counts = {
        "companies": _companies(world, derived, window, con, writes),
        "contacts": _contacts(world, derived, window, con, writes),
        "deals": _deals(world, derived, window, con, writes),
    }
    return counts


def _upsert(con: sqlite3.Connection, records: list[tuple], writes: facts.HubSpotWrites) -> None:
    """Write projected records, keeping what was written through the API as written."""
    con.executemany(UPSERT, writes.kept(records))


def _owner_id(owner: int) -> str:
    return str(OWNER_BASE + owner)


def _companies(world: World, d: Derived, window: Window, con: sqlite3.Connection,
               writes: facts.HubSpotWrites) -> int:
    clients = world.clients
    created = clients["created_at"]
    events = (created, d.first_opened_at, d.first_won_at, d.hs_erp_ref_at, clients["archived_at"],
              clients["crm_merged_at"], clients["crm_mistake_at"], clients["crm_restored_at"])
    rows = np.flatnonzero(window.visible(created) & window.changed(*events))
    last = window.last(*events)[rows]
    stamps = window.stamp_ms(last, clients["ms_jitter"][rows])
    records = []
    for i, stamp in zip(rows.tolist(), stamps.tolist()):
        country = clients["country"][i]
        domain = d.domain[i]
        props = {
            "name": d.system_names[i]["hubspot"],
            "website": f"https://www.{domain}",
            "phone": f"{names.COUNTRIES[country][3]} {clients['tax_number'][i] % 10**9:09d}",
            "city": names.COUNTRIES[country][4][int(clients["variant"][i]) % 5],
            "country": names.COUNTRY_NAMES[country],
            "industry": names.INDUSTRY_BY_SECTOR[clients["sector"][i]],
            "numberofemployees": str(int(clients["employees"][i])),
            "hubspot_owner_id": _owner_id(int(clients["owner"][i])),
            "lifecyclestage": _lifecycle(i, d, window.end),
        }
        if not clients["hs_domain_missing"][i]:
            props["domain"] = domain
        if d.extra_domain[i]:
            props["hs_additional_domains"] = d.extra_domain[i]
        if clients["crm_merged_at"][i] <= window.end:
            props["hs_merged_object_ids"] = str(HS_MERGED_COMPANY_BASE + i)
        if d.hubspot_vat_shown[i]:
            props["vat_number"] = d.hubspot_vat[i]
        if d.hs_erp_ref_at[i] <= window.end:
            props["erp_customer_ref"] = d.erp_ref[i]
        archived_at = clients["archived_at"][i]
        if clients["crm_mistake_at"][i] <= window.end < clients["crm_restored_at"][i]:
            archived_at = min(archived_at, clients["crm_mistake_at"][i])  # in the recycle bin for now
        archived = archived_at <= window.end
        records.append(("companies", HS_COMPANY_BASE + i, orjson.dumps(props).decode(),
                        int(created[i]) * 1000 + int(clients["ms_jitter"][i]), stamp, int(archived),
                        int(archived_at) * 1000 if archived else None))
    # Duplicates: a second company for the same client, typed in by another rep.
    dup = np.flatnonzero((clients["fault"] == CF_DUPLICATE) & (clients["fault_dup_system"] == DUP_HUBSPOT)
                         & window.changed(d.duplicate_at))
    for i in dup.tolist():
        records.append(_second_company(world, d, window, i, int(d.duplicate_at[i]), HS_DUPLICATE_COMPANY_BASE,
                                       int(clients["variant"][i]), (int(clients["owner"][i]) + 1) % world.config.scale.owners))
    # Second companies typed in for a client (`crm_merge`), while they last: merged into the
    # first, they are gone (deleted below) and the first lists them in `hs_merged_object_ids`.
    typed, merged = clients["crm_duplicate_at"], clients["crm_merged_at"]
    for i in np.flatnonzero(window.changed(typed) & (merged > window.end)).tolist():
        records.append(_second_company(world, d, window, i, int(typed[i]), HS_MERGED_COMPANY_BASE,
                                       int(clients["variant"][i]) + 1, int(clients["owner"][i])))
    _upsert(con, records, writes)
    gone = np.flatnonzero(window.changed(clients["crm_merged_at"]))
    for i in gone.tolist():  # associations made through the API (the simulation links none to them)
        store.move_associations(con, "companies", HS_MERGED_COMPANY_BASE + i, HS_COMPANY_BASE + i)
    con.executemany("DELETE FROM hs_objects WHERE object_type = 'companies' AND id = ?",
                    [(HS_MERGED_COMPANY_BASE + int(i),) for i in gone])
    return len(records)


def _second_company(world: World, d: Derived, window: Window, i: int, at: int, base: int, variant: int,
                    owner: int) -> tuple:
    """Another company for client `i`, typed in by a rep at `at` under a variant of its name."""
    clients = world.clients
    props = {"name": names.duplicate_name(d.system_names[i]["hubspot"], variant),
             "country": names.COUNTRY_NAMES[clients["country"][i]], "lifecyclestage": "lead",
             "hubspot_owner_id": _owner_id(owner)}
    if clients["hs_domain_missing"][i]:
        props["vat_number"] = d.vat[i]
    else:
        props["domain"] = d.domain[i]
    jitter = int(clients["ms_jitter"][i])
    stamp = int(window.stamp_ms(np.array([at]), np.array([jitter]))[0])
    return ("companies", base + i, orjson.dumps(props).decode(), at * 1000 + jitter, stamp, 0, None)


def _lifecycle(client: int, d: Derived, at: int) -> str:
    if d.first_won_at[client] <= at:
        return "customer"
    if d.first_opened_at[client] <= at:
        return "opportunity"
    return "lead"


def _contacts(world: World, d: Derived, window: Window, con: sqlite3.Connection,
              writes: facts.HubSpotWrites) -> int:
    contacts, clients = world.contacts, world.clients
    created = contacts["created_at"]
    # A contact becomes a customer when its company does (HubSpot syncs the lifecycle stage).
    became_customer = np.maximum(d.first_won_at[contacts["client"]], created)
    events = (created, contacts["archived_at"], became_customer)
    rows = np.flatnonzero(window.visible(created) & window.changed(*events))
    stamps = window.stamp_ms(window.last(*events)[rows], contacts["ms_jitter"][rows])
    records, links = [], []
    for i, stamp in zip(rows.tolist(), stamps.tolist()):
        client = int(contacts["client"][i])
        first, last = contacts["first_name"][i], contacts["last_name"][i]
        domain = d.domain[client]
        props = {
            "firstname": first,
            "lastname": last,
            "email": f"{names.email_local(first, last)}@{domain}",
            "jobtitle": names.JOB_TITLES[int(contacts["title"][i])],
            "company": d.system_names[client]["hubspot"],
            "lifecyclestage": "customer" if d.first_won_at[client] <= window.end else "lead",
            "hubspot_owner_id": _owner_id(int(clients["owner"][client])),
        }
        archived_at = contacts["archived_at"][i]
        archived = archived_at <= window.end
        contact_id = HS_CONTACT_BASE + i
        records.append(("contacts", contact_id, orjson.dumps(props).decode(),
                        int(created[i]) * 1000 + int(contacts["ms_jitter"][i]), stamp, int(archived),
                        int(archived_at) * 1000 if archived else None))
        company_id = HS_COMPANY_BASE + client
        links += _both_ways("contacts", contact_id, "companies", company_id, CONTACT_TO_COMPANY, COMPANY_TO_CONTACT)
    _upsert(con, records, writes)
    _link(con, links, writes)
    return len(records)


def _deals(world: World, d: Derived, window: Window, con: sqlite3.Connection, writes: facts.HubSpotWrites) -> int:
    deals, clients = world.deals, world.clients
    n = len(deals)
    if n == 0:
        return 0
    opened, close = deals["opened_at"], deals["close_at"]
    stage_at = deals["stage_at"]
    amended_at = np.full(n, NEVER, dtype=np.int64)
    amended_amount = deals["amount"].copy()
    engagements = world.engagements
    if len(engagements):
        amended_at[engagements["deal"]] = engagements["amended_at"]
        amended_amount[engagements["deal"]] = engagements["amended_amount"]
    reached = deals["reached"]
    stage_events = [np.where(k < reached, stage_at[:, k], NEVER) for k in range(len(DEAL_STAGES))]
    events = (opened, *stage_events, close, amended_at, deals["archived_at"])
    rows = np.flatnonzero(window.visible(opened) & window.changed(*events))
    stamps = window.stamp_ms(window.last(*events)[rows], deals["ms_jitter"][rows])
    records, links = [], []
    end = window.end
    for i, stamp in zip(rows.tolist(), stamps.tolist()):
        client = int(deals["client"][i])
        closed = close[i] <= end
        won = bool(deals["won"][i])
        if closed:
            stage = "closedwon" if won else "closedlost"
        else:
            stage = DEAL_STAGES[int(np.sum(stage_at[i, : reached[i]] <= end)) - 1]
        kind = int(deals["kind"][i])
        amount = amended_amount[i] if amended_at[i] <= end else deals["amount"][i]
        props = {
            "dealname": f"{d.system_names[client]['hubspot']} - {SERVICES[kind][int(deals['service'][i])]}",
            "amount": f"{amount:.2f}",
            "dealstage": stage,
            "pipeline": "default",
            "closedate": iso_millis(int(close[i] if closed else deals["expected_close_at"][i]) * 1000),
            "dealtype": "newbusiness" if deals["new_business"][i] else "existingbusiness",
            "hubspot_owner_id": _owner_id(int(clients["owner"][client])),
            "deal_currency_code": CURRENCIES[int(deals["currency"][i])],
            "engagement_type": ENGAGEMENT_TYPES[kind],
            "hs_is_closed": "true" if closed else "false",
            "hs_is_closed_won": "true" if closed and won else "false",
        }
        archived_at = deals["archived_at"][i]
        archived = archived_at <= end
        deal_id = HS_DEAL_BASE + i
        records.append(("deals", deal_id, orjson.dumps(props).decode(),
                        int(opened[i]) * 1000 + int(deals["ms_jitter"][i]), stamp, int(archived),
                        int(archived_at) * 1000 if archived else None))
        links += _both_ways("deals", deal_id, "companies", HS_COMPANY_BASE + client, DEAL_TO_COMPANY, COMPANY_TO_DEAL)
    _upsert(con, records, writes)
    _link(con, links, writes)
    return len(records)


def _both_ways(from_type: str, from_id: int, to_type: str, to_id: int,
               forward: tuple, backward: tuple) -> list[tuple]:
    return ([(from_type, from_id, to_type, to_id, type_id, label) for type_id, label in forward]
            + [(to_type, to_id, from_type, from_id, type_id, label) for type_id, label in backward])


def _link(con: sqlite3.Connection, links: list[tuple], writes: facts.HubSpotWrites) -> None:
    links = writes.link(links)
    con.executemany(
        "INSERT OR IGNORE INTO hs_associations (from_type, from_id, to_type, to_id, type_id, label) "
        "VALUES (?, ?, ?, ?, ?, ?)", links)
