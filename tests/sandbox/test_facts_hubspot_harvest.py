"""Writes through HubSpot's and Harvest's APIs are facts: `advance` keeps each one as written and
the firm carries on around it. One test per write endpoint; HubSpot's PATCH of one record is
`test_facts.test_a_deal_amount_edited_in_hubspot_stays_as_written`.

Every test writes to a record the simulation touches in the advanced days (picked by simulating
the firm without the write), advances past that, and checks both the write and the firm's life
around it. They share one generated firm, copied for each test."""

from __future__ import annotations

import functools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from sandbox import facts, ground_truth, store
from sandbox.lifecycle import advance, generate
from sandbox.server.harvest_api import FIRST_API_TIME_ENTRY_ID
from sandbox.server.hubspot_api import API_ID_FLOOR
from sandbox.world.config import DAY, NEVER, SCALES, WorldConfig, fault_rates, noise_rates, parse_date
from sandbox.world.derived import (
    HS_COMPANY_BASE, HS_DEAL_BASE, HS_DUPLICATE_COMPANY_BASE, HS_MERGED_COMPANY_BASE, HV_CLIENT_BASE, HV_PROJECT_BASE, HV_TASK_BASE,
    HV_TIME_ENTRY_BASE, HV_USER_BASE, Derived, derive,
)
from sandbox.world.codes import CF_DUPLICATE, DUP_HUBSPOT, T_AND_M, TM_MONTHLY
from sandbox.world.firm import World, simulate

AS_OF, DAYS, SEED = "2026-06-01", 45, 8
START = parse_date(AS_OF)
END = START + DAYS * DAY
MONTH = "2026-05"  # the month whose last week is not approved yet at AS_OF (a Monday)


# --- picking records by simulating ----------------------------------------------------------------

@functools.cache
def world() -> World:
    """The firm simulated through the advanced days, without any API write."""
    config = WorldConfig(seed=SEED, scale=SCALES["small"], start=parse_date("2025-11-01"),
                         fault_rates=fault_rates(), noise_rates=noise_rates())
    return simulate(config, END)


@functools.cache
def derived() -> Derived:
    return derive(world())


def clients_winning_their_first_deal() -> list[int]:
    """Clients in HubSpot at AS_OF whose first deal is won within DAYS (the simulation then
    projects their company again, a customer now)."""
    w = world()
    c, won = w.clients, derived().first_won_at
    chosen = np.flatnonzero((c["created_at"] <= START) & (won > START) & (won <= END) & (c["archived_at"] > END)
                            & (c["crm_duplicate_at"] >= NEVER))
    assert len(chosen) >= 3, "the firm needs three clients winning a first deal in the window"
    return chosen.tolist()


def deals_closing() -> list[int]:
    """Deals open at AS_OF that the simulation closes within DAYS."""
    deals = world().deals
    chosen = np.flatnonzero((deals["opened_at"] < START) & (deals["close_at"] > START) & (deals["close_at"] <= END))
    assert len(chosen) >= 2
    return chosen.tolist()


def open_entries() -> np.ndarray:
    """Time entries in Harvest at AS_OF that nobody has approved yet (so the API may edit them)."""
    t = world().time_entries
    return (t["created_at"] <= START) & (t["approved_at"] > START)


def fault_months() -> set[int]:
    """Engagements with approved time left off their invoice for MONTH."""
    faults = world().unbilled_faults
    month = np.datetime64(MONTH, "D").astype(np.int64)
    return set(faults["engagement"][faults["month_day"] == month].tolist())


def unbilled_week() -> tuple[int, np.ndarray]:
    """(engagement, time entry rows) of a week left off an invoice, its entries all open at
    AS_OF, the fault detectable within DAYS."""
    faults, is_open = world().unbilled_faults, open_entries()
    for k in range(len(faults)):
        rows = faults["entries"][k]
        if START < faults["visible_at"][k] <= END and len(rows) >= 2 and is_open[rows].all():
            return int(faults["engagement"][k]), rows
    raise AssertionError("the firm needs an unbilled week whose entries are open at AS_OF")


def entry_to_move() -> tuple[int, int]:
    """(time entry row, engagement) of an open billable entry invoiced within DAYS whose consultant
    also works on that other T&M engagement, both billed for MONTH with no week left off and the
    consultant keeping other billable time on the first."""
    w = world()
    t, e, members = w.time_entries, w.engagements, w.members
    may = (t["spent_day"] >= np.datetime64(MONTH, "D").astype(np.int64)) & (t["spent_day"] < START // DAY)
    faulty, project_live = fault_months(), derived().project_archived_at > END
    for row in np.flatnonzero(open_entries() & t["billable"] & (t["billed_at"] <= END)).tolist():
        eng, user = int(t["engagement"][row]), int(t["user"][row])
        if eng in faulty or (may & t["billable"] & (t["engagement"] == eng) & (t["user"] == user)).sum() < 2:
            continue
        for other in members["engagement"][members["user"] == user].tolist():
            if (other != eng and other not in faulty and e["kind"][other] == T_AND_M and project_live[other]
                    and (may & t["billable"] & (t["engagement"] == other) & (t["billed_at"] <= END)).any()):
                return row, int(other)
    raise AssertionError("the firm needs a consultant on two T&M engagements with open billable time")


def may_invoice(engagement: int) -> str:
    """The Stripe invoice id of an engagement's time for MONTH."""
    w = world()
    inv = w.invoices
    first_day = np.datetime64(MONTH, "D").astype(np.int64)
    (i,) = np.flatnonzero((inv["engagement"] == engagement) & (inv["kind"] == TM_MONTHLY)
                          & (inv["period_start_day"] == first_day))
    return derived().stripe_invoice_id[int(i)]


# --- a served copy of the generated firm ------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("generated") / "firm"
    generate(data_dir, scale="small", seed=SEED, as_of=AS_OF)
    return data_dir


class Firm:
    """A copy of the generated firm behind a running server: its APIs, `advance` and its state."""

    def __init__(self, data_dir: Path, settings: dict[str, str]):
        self.data_dir = data_dir
        self.hubspot_url = settings["SOURCES__HUBSPOT__BASE_URL"]
        self.hubspot_headers = {"Authorization": f"Bearer {settings['SOURCES__HUBSPOT__ACCESS_TOKEN']}"}
        self.harvest_url = settings["SOURCES__HARVEST__BASE_URL"]
        self.harvest_headers = {"Authorization": f"Bearer {settings['SOURCES__HARVEST__ACCESS_TOKEN']}",
                                "Harvest-Account-Id": settings["SOURCES__HARVEST__ACCOUNT_ID"],
                                "User-Agent": "concord-tests (tests@example.com)"}

    def hubspot(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = requests.request(method, self.hubspot_url + path, headers=self.hubspot_headers, timeout=30,
                                    **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def harvest(self, method: str, path: str, status: int = 200, base: str | None = None, **kwargs: Any) -> Any:
        response = requests.request(method, (base or self.harvest_url) + path, headers=self.harvest_headers,
                                    timeout=30, **kwargs)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    def harvest_web(self, path: str, status: int = 200, **kwargs: Any) -> Any:
        """What a person does in Harvest's web app, where its API has no such write."""
        return self.harvest("POST", path, status, base=self.harvest_url.removesuffix("/v2") + "/web", **kwargs)

    def advance(self) -> None:
        advance(self.data_dir, DAYS)

    def sql(self, query: str, *params: Any) -> list[tuple]:
        con = store.connect(self.data_dir)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()

    def facts(self, system: str, action: str) -> list[dict[str, Any]]:
        con = store.connect(self.data_dir)
        try:
            return [f for f in facts.read(con) if f["system"] == system and f["action"] == action]
        finally:
            con.close()

    def billed_hours(self, invoice_id: str, user_id: int) -> float:
        """Hours the Stripe invoice bills for a consultant (0 without a line for them)."""
        ((first, last),) = self.sql("SELECT first_name, last_name FROM hv_users WHERE id = ?", user_id)
        for (doc,) in self.sql("SELECT doc FROM stripe_invoice_lines WHERE invoice = ?", invoice_id):
            line = re.match(r"Consulting services: (.+), ([0-9.]+) h @", json.loads(doc)["description"] or "")
            if line and line[1] == f"{first} {last}":
                return float(line[2])
        return 0.0

    def approved_hours(self, project_id: int, user_id: int) -> float:
        """Approved billable hours Harvest shows for a consultant on a project in MONTH."""
        ((hours,),) = self.sql("SELECT COALESCE(SUM(hours), 0) FROM hv_time_entries WHERE project_id = ? "
                               "AND user_id = ? AND spent_date LIKE ? AND billable = 1 AND is_closed = 1",
                               project_id, user_id, f"{MONTH}-%")
        return hours


@pytest.fixture
def firm(generated: Path, tmp_path: Path, serve) -> Firm:
    data_dir = tmp_path / "firm"
    shutil.copytree(generated, data_dir)
    return Firm(data_dir, serve(data_dir).client_settings())


def associated(firm: Firm, from_type: str, from_id: int | str, to_type: str) -> set[int]:
    body = firm.hubspot("GET", f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}")
    return {int(r["toObjectId"]) for r in body["results"]}


# --- HubSpot -------------------------------------------------------------------------------------------

def test_a_record_created_in_hubspot_keeps_its_id_and_properties(firm: Firm) -> None:
    written = {"dealname": "Client-typed deal", "amount": "4321.00", "dealstage": "qualifiedtobuy"}
    created = firm.hubspot("POST", "/crm/v3/objects/deals", 201, json={"properties": written})
    firm.advance()
    after = firm.hubspot("GET", f"/crm/v3/objects/deals/{created['id']}",
                         params={"properties": ",".join(written)})
    assert {k: after["properties"][k] for k in written} == written and after["createdAt"] == created["createdAt"]
    deals = world().deals
    new = [HS_DEAL_BASE + k for k in np.flatnonzero((deals["opened_at"] > START) & (deals["opened_at"] <= END))]
    assert new and max(new) < API_ID_FLOOR <= int(created["id"])
    projected = {i for (i,) in firm.sql("SELECT id FROM hs_objects WHERE object_type = 'deals'")}
    assert set(new) <= projected, "the simulation's new deals were projected, under their own ids"
    assert firm.sql("SELECT id FROM hs_objects WHERE id >= ?", API_ID_FLOOR) == [(int(created["id"]),)]
    again = firm.hubspot("POST", "/crm/v3/objects/deals", 201, json={"properties": {"dealname": "Another"}})
    assert int(again["id"]) == int(created["id"]) + 1
    assert [f["id"] for f in firm.facts("hubspot", "create")] == [created["id"], again["id"]]


def test_records_batch_created_in_hubspot_keep_their_associations(firm: Firm) -> None:
    client = clients_winning_their_first_deal()[0]
    company = HS_COMPANY_BASE + client
    to_company = [{"to": {"id": str(company)},
                   "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]
    inputs = [{"properties": {"firstname": name, "lastname": "Typed-In", "email": f"{name.lower()}@example.com"},
               "associations": to_company} for name in ("Ada", "Grace")]
    created = firm.hubspot("POST", "/crm/v3/objects/contacts/batch/create", 201, json={"inputs": inputs})
    ids = {int(r["id"]) for r in created["results"]}
    firm.advance()
    company_now = firm.hubspot("GET", f"/crm/v3/objects/companies/{company}", params={"properties": "lifecyclestage"})
    assert company_now["properties"]["lifecyclestage"] == "customer", "the simulation moved the company on"
    assert ids <= associated(firm, "companies", company, "contacts")
    for contact in ids:
        assert associated(firm, "contacts", contact, "companies") == {company}
        after = firm.hubspot("GET", f"/crm/v3/objects/contacts/{contact}", params={"properties": "lastname,email"})
        assert after["properties"]["lastname"] == "Typed-In"
    assert {int(f["id"]) for f in firm.facts("hubspot", "create")} == ids


def test_an_association_made_in_hubspot_follows_a_company_merge(firm: Firm) -> None:
    c = world().clients
    (client, *_) = np.flatnonzero((c["crm_duplicate_at"] <= START) & (c["crm_merged_at"] > START)
                                  & (c["crm_merged_at"] <= END)).tolist()
    second, first = HS_MERGED_COMPANY_BASE + client, HS_COMPANY_BASE + client
    contact = firm.hubspot("POST", "/crm/v3/objects/contacts", 201, json={
        "properties": {"firstname": "Linus", "lastname": "Merged", "email": "linus@example.com"},
        "associations": [{"to": {"id": str(second)},
                          "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}]})
    firm.advance()
    firm.hubspot("GET", f"/crm/v3/objects/companies/{second}", 404)
    assert associated(firm, "contacts", contact["id"], "companies") == {first}, "the merge handed it over"
    assert int(contact["id"]) in associated(firm, "companies", first, "contacts")
    assert firm.sql("SELECT count(*) FROM hs_associations WHERE from_id = ? OR to_id = ?", second, second) == [(0,)]


def test_properties_batch_updated_in_hubspot_stay_as_written(firm: Firm) -> None:
    company = HS_COMPANY_BASE + clients_winning_their_first_deal()[1]
    deal = HS_DEAL_BASE + deals_closing()[0]
    firm.hubspot("POST", "/crm/v3/objects/companies/batch/update", json={"inputs": [
        {"id": str(company), "properties": {"description": "Typed by the account team", "city": ""}}]})
    firm.hubspot("POST", "/crm/v3/objects/deals/batch/update", json={"inputs": [
        {"id": str(deal), "properties": {"amount": "777.00"}}]})
    firm.advance()
    company_now = firm.hubspot("GET", f"/crm/v3/objects/companies/{company}",
                               params={"properties": "lifecyclestage,description,city"})["properties"]
    assert company_now["lifecyclestage"] == "customer", "the simulation moved the company on"
    assert company_now["description"] == "Typed by the account team" and company_now["city"] is None
    deal_now = firm.hubspot("GET", f"/crm/v3/objects/deals/{deal}", params={"properties": "amount,dealstage"})
    assert deal_now["properties"]["dealstage"] in {"closedwon", "closedlost"}
    assert deal_now["properties"]["amount"] == "777.00"


def test_a_record_archived_in_hubspot_stays_archived(firm: Firm) -> None:
    company = HS_COMPANY_BASE + clients_winning_their_first_deal()[2]
    deal = HS_DEAL_BASE + deals_closing()[1]
    firm.hubspot("DELETE", f"/crm/v3/objects/companies/{company}", 204)
    firm.hubspot("DELETE", f"/crm/v3/objects/deals/{deal}", 204)
    archived = {row[0]: row[1] for row in firm.sql("SELECT id, archived_at FROM hs_objects WHERE archived = 1 "
                                                   "AND id IN (?, ?)", company, deal)}
    firm.advance()
    for object_type, object_id, name, moved_on in (("companies", company, "lifecyclestage", {"customer"}),
                                                   ("deals", deal, "dealstage", {"closedwon", "closedlost"})):
        firm.hubspot("GET", f"/crm/v3/objects/{object_type}/{object_id}", 404)
        after = firm.hubspot("GET", f"/crm/v3/objects/{object_type}/{object_id}",
                             params={"archived": "true", "properties": name})
        assert after["archived"] is True and after["properties"][name] in moved_on, "archived, still the firm's"
    assert {row[0]: row[1] for row in firm.sql("SELECT id, archived_at FROM hs_objects WHERE archived = 1 "
                                               "AND id IN (?, ?)", company, deal)} == archived
    assert len(firm.facts("hubspot", "archive")) == 2


def test_a_record_restored_in_hubspot_stays_live(firm: Firm) -> None:
    company = HS_COMPANY_BASE + clients_winning_their_first_deal()[1]
    firm.hubspot("DELETE", f"/crm/v3/objects/companies/{company}", 204)
    restore = f"/web/objects/companies/{company}/restore"  # the web app's recycle bin
    assert firm.hubspot("POST", restore) == {"id": str(company), "archived": False}
    firm.hubspot("POST", restore, 404)  # nothing left in the recycle bin
    firm.advance()
    after = firm.hubspot("GET", f"/crm/v3/objects/companies/{company}", params={"properties": "lifecyclestage"})
    assert after["archived"] is False and after["properties"]["lifecyclestage"] == "customer", "live, the firm's"
    assert [f["action"] for f in firm.facts("hubspot", "archive") + firm.facts("hubspot", "restore")] == [
        "archive", "restore"]


def test_property_definitions_and_groups_written_in_hubspot_survive_advance(firm: Firm) -> None:
    group = firm.hubspot("POST", "/crm/v3/properties/companies/groups", 201,
                         json={"name": "client_ops", "label": "Client operations", "displayOrder": 3})
    firm.hubspot("POST", "/crm/v3/properties/companies", 201, json={
        "name": "ops_tier", "label": "Ops tier", "type": "enumeration", "fieldType": "select",
        "groupName": "client_ops",
        "options": [{"label": "Gold", "value": "gold"}, {"label": "Silver", "value": "silver"}]})
    tier = firm.hubspot("PATCH", "/crm/v3/properties/companies/ops_tier", json={"label": "Service tier"})
    vat = firm.hubspot("PATCH", "/crm/v3/properties/companies/vat_number",
                       json={"label": "VAT ID", "description": "Checked against VIES by finance"})
    company = HS_COMPANY_BASE + clients_winning_their_first_deal()[0]
    firm.hubspot("PATCH", f"/crm/v3/objects/companies/{company}", json={"properties": {"ops_tier": "gold"}})
    firm.advance()
    assert firm.hubspot("GET", "/crm/v3/properties/companies/groups/client_ops") == group
    assert firm.hubspot("GET", "/crm/v3/properties/companies/ops_tier") == tier
    assert firm.hubspot("GET", "/crm/v3/properties/companies/vat_number") == vat
    after = firm.hubspot("GET", f"/crm/v3/objects/companies/{company}",
                         params={"properties": "ops_tier,lifecyclestage"})["properties"]
    assert (after["ops_tier"], after["lifecyclestage"]) == ("gold", "customer")
    assert sorted((f["object"], f["action"]) for f in firm.facts("hubspot", "create") + firm.facts("hubspot", "update")
                  if f["object"] != "companies") == [("property", "create"), ("property", "update"),
                                                     ("property", "update"), ("property_group", "create")]


# --- Harvest -------------------------------------------------------------------------------------------

def test_a_time_entry_created_in_harvest_is_left_as_created(firm: Firm) -> None:
    row, _ = entry_to_move()  # an open billable entry: its week is approved and its month billed
    t = world().time_entries
    project, user = HV_PROJECT_BASE + int(t["engagement"][row]), HV_USER_BASE + int(t["user"][row])
    spent = str(np.datetime64(int(t["spent_day"][row]), "D"))
    created = firm.harvest("POST", "/time_entries", 201, json={
        "user_id": user, "project_id": project, "task_id": HV_TASK_BASE, "spent_date": spent, "hours": 2.5,
        "notes": "Logged late by the consultant"})
    firm.advance()
    assert firm.harvest("GET", f"/time_entries/{created['id']}") == created, "left exactly as created"
    assert firm.harvest("GET", f"/time_entries/{HV_TIME_ENTRY_BASE + row}")["is_closed"], "its week was approved"
    assert 0 < firm.billed_hours(may_invoice(int(t["engagement"][row])), user) == firm.approved_hours(project, user)
    assert firm.sql("SELECT max(id) FROM hv_time_entries WHERE id < ?", FIRST_API_TIME_ENTRY_ID)[0][0] \
        < FIRST_API_TIME_ENTRY_ID <= created["id"]
    assert [int(f["id"]) for f in firm.facts("harvest", "create")] == [created["id"]]


def test_a_time_entry_deleted_in_harvest_stays_deleted(firm: Firm) -> None:
    engagement, rows = unbilled_week()
    gone, kept = int(rows[1]), [int(r) for r in rows if r != rows[1]]
    firm.harvest("DELETE", f"/time_entries/{HV_TIME_ENTRY_BASE + gone}")
    firm.advance()
    firm.harvest("GET", f"/time_entries/{HV_TIME_ENTRY_BASE + gone}", 404)
    assert firm.sql("SELECT count(*) FROM hv_time_entries WHERE id = ?", HV_TIME_ENTRY_BASE + gone) == [(0,)]
    rest = [firm.harvest("GET", f"/time_entries/{HV_TIME_ENTRY_BASE + r}") for r in kept]
    assert all(entry["is_closed"] for entry in rest), "the rest of its week was approved"
    (fault,) = [e for e in ground_truth.read(firm.data_dir / store.GROUND_TRUTH_FILE)
                if e.get("fault_id") == f"approved_time_unbilled:{engagement}:{MONTH}"]
    named = {int(r["id"]) for r in fault["records"] if r["object"] == "time_entry"}
    assert named == {HV_TIME_ENTRY_BASE + r for r in kept}, "the ground truth names what Harvest shows"
    assert fault["details"]["hours"] == pytest.approx(sum(entry["hours"] for entry in rest))
    assert [int(f["id"]) for f in firm.facts("harvest", "delete")] == [HV_TIME_ENTRY_BASE + gone]


def test_a_time_entry_edited_in_harvest_keeps_what_was_written(firm: Firm) -> None:
    row, other = entry_to_move()
    t = world().time_entries
    entry_id, user = HV_TIME_ENTRY_BASE + row, HV_USER_BASE + int(t["user"][row])
    day = int(t["spent_day"][row])
    monday = day - (day + 3) % 7
    written = {"hours": float(t["hours"][row]) + 1.75, "notes": "Re-booked to the right engagement",
               "spent_date": str(np.datetime64(monday + ((day - monday) + 2) % 5, "D")),
               "project_id": HV_PROJECT_BASE + other, "task_id": HV_TASK_BASE + (int(t["task"][row]) + 1) % 5}
    edited = firm.harvest("PATCH", f"/time_entries/{entry_id}", json=written)
    assert edited["client"]["id"] == HV_CLIENT_BASE + int(world().engagements["client"][other]) and edited["billable"]
    firm.advance()
    after = firm.harvest("GET", f"/time_entries/{entry_id}")
    follows = ("spent_date", "hours", "notes", "project", "task", "client", "user_assignment", "task_assignment",
               "billable", "billable_rate", "cost_rate", "user")
    assert {k: after[k] for k in follows} == {k: edited[k] for k in follows}
    assert (after["project"]["id"], after["task"]["id"], after["hours"]) == (
        written["project_id"], written["task_id"], written["hours"])
    assert after["is_closed"] and after["is_locked"], "the firm approved it afterwards"
    for engagement in (int(t["engagement"][row]), other):
        project = HV_PROJECT_BASE + engagement
        assert 0 < firm.billed_hours(may_invoice(engagement), user) == firm.approved_hours(project, user), \
            "the month's invoice bills the hours Harvest shows"
    assert [int(f["id"]) for f in firm.facts("harvest", "update")] == [entry_id]


def month_nobody_marked() -> tuple[int, np.ndarray]:
    """(engagement, time entry rows) of a T&M engagement's approved billable time in MONTH that
    nobody marks invoiced in Harvest through END."""
    t = world().time_entries
    in_month = (t["spent_day"] >= np.datetime64(MONTH, "D").astype(np.int64)) & (t["spent_day"] < START // DAY)
    for eng in np.unique(t["engagement"][in_month & t["billable"]]).tolist():
        mine = in_month & (t["engagement"] == eng)
        rows = np.flatnonzero(mine & t["billable"] & (t["approved_at"] <= START))
        if len(rows) >= 3 and (t["marked_at"][mine] >= NEVER).all():
            return eng, rows[:3]
    raise AssertionError("the firm needs a month of approved time nobody marks")


def test_time_marked_invoiced_by_hand_in_harvest_stays_marked(firm: Firm) -> None:
    engagement, rows = month_nobody_marked()
    ids = [HV_TIME_ENTRY_BASE + int(r) for r in rows]
    assert firm.harvest_web("/time_entries/mark_invoiced", json={"ids": ids}) == {"marked": ids}
    assert firm.harvest_web("/time_entries/mark_invoiced", json={"ids": ids[:1]}) == {"marked": []}
    firm.harvest_web("/time_entries/mark_invoiced", 404, json={"ids": [FIRST_API_TIME_ENTRY_ID - 1]})
    firm.harvest_web("/time_entries/mark_invoiced", 422, json={"ids": "all"})
    firm.advance()
    for entry_id in ids:
        entry = firm.harvest("GET", f"/time_entries/{entry_id}")
        assert entry["is_billed"] and entry["is_locked"] and entry["invoice"] is None, "marked, on no Harvest invoice"
        firm.harvest("PATCH", f"/time_entries/{entry_id}", 422, json={"hours": 1})
    (valid,) = [e for e in ground_truth.read(firm.data_dir / store.GROUND_TRUTH_FILE)
                if e.get("valid_id") == f"harvest_marking:{engagement}:{MONTH}"]
    assert valid["details"]["marked_entries"] == len(ids), "the ground truth knows the marks are no evidence"
    assert [int(f["id"]) for f in firm.facts("harvest", "mark_invoiced")] == ids


def approved_entry_of_an_unbilled_month() -> int:
    """A billable entry of MONTH approved by AS_OF, on a T&M engagement with no week left off its
    invoice for MONTH, which is issued within DAYS."""
    t, faulty = world().time_entries, fault_months()
    in_month = (t["spent_day"] >= np.datetime64(MONTH, "D").astype(np.int64)) & (t["spent_day"] < START // DAY)
    for row in np.flatnonzero(in_month & t["billable"] & (t["approved_at"] <= START)
                              & (t["corrected_at"] >= NEVER) & (t["billed_at"] > START)).tolist():
        if int(t["engagement"][row]) not in faulty:
            return row
    raise AssertionError("the firm needs an approved entry of a month not yet invoiced")


def test_an_approved_entry_reopened_and_corrected_in_harvest_is_billed_as_corrected(firm: Firm) -> None:
    row = approved_entry_of_an_unbilled_month()
    t = world().time_entries
    entry_id, user = HV_TIME_ENTRY_BASE + row, HV_USER_BASE + int(t["user"][row])
    engagement = int(t["engagement"][row])
    firm.harvest("PATCH", f"/time_entries/{entry_id}", 422, json={"hours": 1})  # approved: locked
    assert firm.harvest_web("/time_entries/reopen", json={"ids": [entry_id]}) == {"reopened": [entry_id]}
    corrected = firm.harvest("PATCH", f"/time_entries/{entry_id}", json={"hours": float(t["hours"][row]) + 2})
    assert firm.harvest_web("/time_entries/approve", json={"ids": [entry_id]}) == {"approved": [entry_id]}
    firm.advance()
    after = firm.harvest("GET", f"/time_entries/{entry_id}")
    assert (after["hours"], after["is_closed"]) == (corrected["hours"], True)
    assert 0 < firm.billed_hours(may_invoice(engagement), user) == firm.approved_hours(HV_PROJECT_BASE + engagement, user), \
        "the month's invoice bills the corrected hours"
    assert [f["action"] for f in firm.facts("harvest", "reopen") + firm.facts("harvest", "approve")] == [
        "reopen", "approve"]


def test_a_company_merged_in_hubspot_stays_merged(firm: Firm) -> None:
    client = clients_winning_their_first_deal()[1]
    gone = HS_COMPANY_BASE + client
    deals = world().deals
    won = np.flatnonzero((deals["client"] == client) & deals["won"] & (deals["close_at"] > START)
                         & (deals["close_at"] <= END))
    kept = int(firm.hubspot("POST", "/crm/v3/objects/companies", 201,
                            json={"properties": {"name": "Merged Holdings"}})["id"])
    merged = firm.hubspot("POST", "/crm/v3/objects/companies/merge",
                          json={"primaryObjectId": str(kept), "objectIdToMerge": str(gone)})
    assert merged["properties"]["hs_merged_object_ids"] == str(gone)
    firm.advance()
    firm.hubspot("GET", f"/crm/v3/objects/companies/{gone}", 404)
    firm.hubspot("GET", f"/crm/v3/objects/companies/{gone}", 404, params={"archived": "true"})
    after = firm.hubspot("GET", f"/crm/v3/objects/companies/{kept}", params={"properties": "hs_merged_object_ids"})
    assert after["properties"]["hs_merged_object_ids"] == str(gone)
    assert len(won) and {HS_DEAL_BASE + int(d) for d in won} <= associated(firm, "companies", kept, "deals"), \
        "the deal the client won afterwards is the surviving company's"
    assert not associated(firm, "companies", gone, "deals")
    assert len(firm.facts("hubspot", "merge")) == 1


def test_a_duplicate_merged_in_hubspot_is_no_fault_any_more(firm: Firm) -> None:
    c, d = world().clients, derived()
    dup = np.flatnonzero((c["fault"] == CF_DUPLICATE) & (c["fault_dup_system"] == DUP_HUBSPOT)
                         & (d.duplicate_at <= START))
    assert len(dup), "the firm needs a client typed into HubSpot twice before AS_OF"
    i = int(dup[0])
    faults = {e["fault_id"] for e in ground_truth.faults(ground_truth.read(firm.data_dir / "ground_truth.jsonl"))}
    assert f"duplicate_customer:{i}" in faults
    firm.hubspot("POST", "/crm/v3/objects/companies/merge",
                 json={"primaryObjectId": str(HS_COMPANY_BASE + i), "objectIdToMerge": str(HS_DUPLICATE_COMPANY_BASE + i)})
    firm.advance()
    faults = {e["fault_id"] for e in ground_truth.faults(ground_truth.read(firm.data_dir / "ground_truth.jsonl"))}
    assert f"duplicate_customer:{i}" not in faults
    firm.hubspot("GET", f"/crm/v3/objects/companies/{HS_DUPLICATE_COMPANY_BASE + i}", 404)
