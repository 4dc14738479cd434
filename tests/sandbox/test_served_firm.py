"""The generated firm through the vendor APIs: every record exactly once, and after `advance`
the incremental filters return exactly what changed.

Each vendor API has its own detailed tests over hand-seeded data; these run the real generator,
the real server and the real `advance`, and compare what the APIs say with the state behind them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from sandbox.lifecycle import advance, generate
from sandbox.world.config import parse_date
from tests.sandbox.snapshots import changed_keys, vendor_state
from tests.sandbox.stripe_schemas import check_schema

AS_OF = "2026-10-01"


class Clients:
    """Authenticated sessions for the three APIs of one running sandbox."""

    def __init__(self, settings: dict[str, str]):
        self.s = settings
        self.session = requests.Session()

    def hubspot(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self.session.request(
            method, f"{self.s['SOURCES__HUBSPOT__BASE_URL']}{path}",
            headers={"Authorization": f"Bearer {self.s['SOURCES__HUBSPOT__ACCESS_TOKEN']}"}, timeout=30, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def stripe(self, url: str, params: dict | None = None) -> dict[str, Any]:
        if url.startswith("/"):
            url = f"{self.s['SOURCES__STRIPE__BASE_URL']}{url}"
        response = self.session.get(url, params=params, timeout=30,
                                    headers={"Authorization": f"Bearer {self.s['SOURCES__STRIPE__API_KEY']}"})
        assert response.status_code == 200, response.text
        return response.json()

    def harvest(self, url: str, params: dict | None = None) -> dict[str, Any]:
        if url.startswith("/"):
            url = f"{self.s['SOURCES__HARVEST__BASE_URL']}{url}"
        response = self.session.get(url, params=params, timeout=30, headers={
            "Authorization": f"Bearer {self.s['SOURCES__HARVEST__ACCESS_TOKEN']}",
            "Harvest-Account-Id": self.s["SOURCES__HARVEST__ACCOUNT_ID"], "User-Agent": "Concord tests (t@x.y)"})
        assert response.status_code == 200, response.text
        return response.json()

    # -- walks --------------------------------------------------------------------------
    def hubspot_list(self, object_type: str, **params: Any) -> Iterator[dict[str, Any]]:
        page = self.hubspot("GET", f"/crm/v3/objects/{object_type}", params={"limit": 100, **params})
        while True:
            yield from page["results"]
            if "paging" not in page:
                return
            response = self.session.get(page["paging"]["next"]["link"], timeout=30, headers={
                "Authorization": f"Bearer {self.s['SOURCES__HUBSPOT__ACCESS_TOKEN']}"})
            page = response.json()

    def hubspot_modified_since(self, object_type: str, since_ms: int) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            body = {"filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                                                   "value": str(since_ms)}]}],
                    "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                    "limit": 200, "after": str(after)}
            page = self.hubspot("POST", f"/crm/v3/objects/{object_type}/search", json=body)
            yield from page["results"]
            if "paging" not in page:
                return
            after = int(page["paging"]["next"]["after"])

    def stripe_list(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        params = {"limit": 100, **params}
        while True:
            page = self.stripe(path, params)
            yield from page["data"]
            if not page["has_more"]:
                return
            params["starting_after"] = page["data"][-1]["id"]

    def harvest_list(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        key = path.strip("/").split("/")[-1]
        page = self.harvest(path, {"per_page": 500, **params})
        while True:
            yield from page[key]
            if not page["links"]["next"]:
                return
            page = self.harvest(page["links"]["next"])


def exactly_once(records: list[dict[str, Any]]) -> set[str]:
    ids = [str(r["id"]) for r in records]
    assert len(ids) == len(set(ids)), "a record was served twice"
    return set(ids)


@pytest.fixture(scope="module")
def firm(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("served") / "firm"
    generate(data_dir, scale="small", seed=5, as_of=AS_OF)
    return data_dir


def test_every_record_is_served_exactly_once(firm: Path, serve) -> None:
    state = vendor_state(firm)
    api = Clients(serve(firm).client_settings())
    for object_type in ("companies", "contacts", "deals"):
        live = {str(k[1]) for k, r in state["hs_objects"].items() if k[0] == object_type and not r["archived"]}
        archived = {str(k[1]) for k, r in state["hs_objects"].items() if k[0] == object_type and r["archived"]}
        assert exactly_once(list(api.hubspot_list(object_type))) == live
        assert exactly_once(list(api.hubspot_list(object_type, archived="true"))) == archived
    for path, kind in (("/v1/customers", "customer"), ("/v1/invoices", "invoice"), ("/v1/charges", "charge"),
                       ("/v1/credit_notes", "credit_note"), ("/v1/disputes", "dispute"), ("/v1/events", "event")):
        stored = {k[0] for k, r in state[_stripe_table(kind)].items() if kind == "event" or r["object"] == kind}
        served = list(api.stripe_list(path))
        assert exactly_once(served) == stored, path
        for doc in served:  # every generated object has the 2023-08-16 shape
            check_schema(doc)
    invoice = next(api.stripe_list("/v1/invoices"))
    lines = list(api.stripe_list(f"/v1/invoices/{invoice['id']}/lines"))
    tax = sum(entry["amount"] for line in lines for entry in line["tax_amounts"])
    assert sum(line["amount"] for line in lines) + tax == invoice["total"]
    assert invoice["tax"] == (tax if any(line["tax_amounts"] for line in lines) else None)
    for path, table in (("/clients", "hv_clients"), ("/projects", "hv_projects"), ("/users", "hv_users"),
                        ("/tasks", "hv_tasks"), ("/time_entries", "hv_time_entries"), ("/expenses", "hv_expenses"),
                        ("/user_assignments", "hv_user_assignments"), ("/task_assignments", "hv_task_assignments")):
        stored = {str(k[0]) for k in state[table]}
        assert exactly_once(list(api.harvest_list(path))) == stored, path


def test_incremental_reads_after_advance_return_exactly_what_changed(tmp_path: Path, serve) -> None:
    data_dir = tmp_path / "firm"
    generate(data_dir, scale="small", seed=6, as_of=AS_OF)
    server = serve(data_dir)
    api = Clients(server.client_settings())
    last_event = next(api.stripe_list("/v1/events", limit=1))["id"]
    before = vendor_state(data_dir)
    # A write through the API before time passes: its stamp must not hide what advance brings.
    company = next(api.hubspot_list("companies"))["id"]
    api.hubspot("PATCH", f"/crm/v3/objects/companies/{company}", json={"properties": {"description": "Key account"}})
    advance(data_dir, 21)  # while the server keeps serving
    after = vendor_state(data_dir)
    t0 = parse_date(AS_OF)

    # HubSpot: a hs_lastmodifieddate search, plus the archived list for records archived since.
    for object_type in ("companies", "contacts", "deals"):
        changed = {str(k[1]) for k in changed_keys(before["hs_objects"], after["hs_objects"]) if k[0] == object_type}
        found = exactly_once(list(api.hubspot_modified_since(object_type, t0 * 1000 + 1)))
        archived = {r["id"] for r in api.hubspot_list(object_type, archived="true")
                    if _epoch(r["archivedAt"]) > t0}
        assert found | archived == changed, object_type
        assert changed, f"three weeks change some {object_type}"

    # Harvest: updated_since.
    since = dt.datetime.fromtimestamp(t0 + 1, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for path, table in (("/clients", "hv_clients"), ("/projects", "hv_projects"),
                        ("/time_entries", "hv_time_entries"), ("/expenses", "hv_expenses")):
        changed = {str(k[0]) for k in changed_keys(before[table], after[table])}
        assert exactly_once(list(api.harvest_list(path, updated_since=since))) == changed, path

    # Stripe: `created` filters give exactly the new objects; the events since the last one
    # seen name every object that changed (customers' next invoice number changes silently).
    new = {k[0] for k in set(after["stripe_objects"]) - set(before["stripe_objects"])}
    listed = set()
    for path in ("/v1/customers", "/v1/invoices", "/v1/charges", "/v1/disputes"):
        listed |= exactly_once(list(api.stripe_list(path, **{"created[gt]": t0})))
    # Stripe's credit-note list takes no `created` filter (2023-08-16): readers filter themselves.
    listed |= {c["id"] for c in api.stripe_list("/v1/credit_notes") if c["created"] > t0}
    assert listed == new
    events = []
    params = {"limit": 100, "ending_before": last_event}
    while True:  # walk forward in time from the last event seen
        page = api.stripe("/v1/events", params)
        events = page["data"] + events
        if not page["has_more"]:
            break
        params["ending_before"] = page["data"][0]["id"]
    named = {e["data"]["object"]["id"] for e in events}
    changed = {k[0] for k in changed_keys(before["stripe_objects"], after["stripe_objects"])}
    silent = {i for i in changed - named if after["stripe_objects"][(i,)]["object"] == "customer"
              and (i,) in before["stripe_objects"]}
    assert named == changed - silent
    assert [e["created"] for e in events] == sorted((e["created"] for e in events), reverse=True)


def _stripe_table(kind: str) -> str:
    return "stripe_events" if kind == "event" else "stripe_objects"


def _epoch(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())
