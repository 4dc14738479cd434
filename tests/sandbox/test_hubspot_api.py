"""The sandbox's HubSpot CRM API, exercised over loopback HTTP exactly as a connector would.

A few hundred companies, contacts and deals (with updated_at ties, archived records and
associations) are seeded straight into the state tables; every expectation is computed in
Python from that seed, never from the API itself.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox import hubspot_properties, store
from sandbox.server.app import RunningServer
from sandbox.server.hubspot_api import API_ID_FLOOR, iso_ms, parse_epoch_ms
from tests.conftest import TEST_NOW_MS, make_empty_state

DAY = 86_400_000
INDUSTRIES = [value for value, _ in hubspot_properties.INDUSTRIES[:6]]
STAGES = [value for value, _ in hubspot_properties.DEAL_STAGES]
LIFECYCLE = ["lead", "opportunity", "customer", "other"]


# --- seeding --------------------------------------------------------------------------------


@dataclasses.dataclass
class Row:
    id: int
    props: dict[str, str]
    created: int
    updated: int
    archived: bool = False


@dataclasses.dataclass
class Seed:
    rows: dict[str, list[Row]]
    associations: list[tuple[str, int, str, int, int, str | None]]

    def live(self, object_type: str) -> list[Row]:
        return [r for r in self.rows[object_type] if not r.archived]


def seed_state(data_dir: Path, *, companies: int = 300, contacts: int = 200, deals: int = 250,
               seed: int = 7) -> Seed:
    """Fill an empty state with a deterministic CRM; return what was written."""
    rng = random.Random(seed)
    stamps = [TEST_NOW_MS - 90 * DAY + k * 3_600_000 for k in range(60)]  # few values → many ties
    rows: dict[str, list[Row]] = {"companies": [], "contacts": [], "deals": [], "notes": []}

    def row(i: int, props: dict[str, str]) -> Row:
        updated = rng.choice(stamps)
        return Row(i, props, updated - rng.randrange(0, 30) * DAY, updated, archived=rng.random() < 0.1)

    for i in range(1, companies + 1):
        props = {"name": f"{rng.choice(['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli'])} {i}",
                 "city": rng.choice(["London", "Paris", "Berlin"]),
                 "industry": rng.choice(INDUSTRIES), "lifecyclestage": rng.choice(LIFECYCLE),
                 "numberofemployees": str(rng.choice([5, 20, 100, 250, 1200, 9])),
                 "erp_customer_ref": f"C{i:05d}", "hubspot_owner_id": str(rng.randrange(1, 6))}
        if rng.random() < 0.8:
            props["domain"] = f"co{i}.example.com"
        if rng.random() < 0.2:
            del props["lifecyclestage"]
        rows["companies"].append(row(i, props))
    for i in range(1, contacts + 1):
        first = rng.choice(["Ada", "Grace", "alan", "EDSGER"])
        rows["contacts"].append(row(i, {"firstname": first, "lastname": f"Person{i}",
                                        "email": f"{first}.p{i}@Example.com"}))
    for i in range(1, deals + 1):
        stage = rng.choice(STAGES)
        props = {"dealname": f"Deal {i}", "dealstage": stage, "pipeline": "default",
                 "deal_currency_code": rng.choice(["USD", "GBP", "EUR"]),
                 "engagement_type": rng.choice(["time_and_materials", "fixed_fee", "retainer"]),
                 "hs_is_closed_won": "true" if stage == "closedwon" else "false",
                 "hs_is_closed": "true" if stage in {"closedwon", "closedlost"} else "false"}
        if rng.random() < 0.85:
            props["amount"] = str(rng.choice([500, 1500.5, 20000, 99, 7500, 120000]))
        if rng.random() < 0.9:
            props["closedate"] = iso_ms(TEST_NOW_MS - rng.randrange(0, 400) * DAY + rng.randrange(0, DAY))
        rows["deals"].append(row(i, props))

    links: list[tuple[str, int, str, int, int, str | None]] = []
    for c in rows["contacts"]:
        company = rng.randrange(1, companies + 1)
        links += [("contacts", c.id, "companies", company, 1, "Primary"),
                  ("contacts", c.id, "companies", company, 279, None),
                  ("companies", company, "contacts", c.id, 2, "Primary"),
                  ("companies", company, "contacts", c.id, 280, None)]
    for d in rows["deals"]:
        company = rng.randrange(1, companies + 1)
        links += [("deals", d.id, "companies", company, 5, "Primary"),
                  ("deals", d.id, "companies", company, 341, None),
                  ("companies", company, "deals", d.id, 6, "Primary"),
                  ("companies", company, "deals", d.id, 342, None)]

    con = store.connect(data_dir)
    with con:
        hubspot_properties.install(con, TEST_NOW_MS - 365 * DAY)
        con.executemany(
            "INSERT INTO hs_objects (object_type, id, properties, created_at, updated_at, archived, archived_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(t, r.id, json.dumps(r.props), r.created, r.updated, int(r.archived),
              r.updated if r.archived else None) for t, rs in rows.items() for r in rs])
        con.executemany("INSERT OR IGNORE INTO hs_associations (from_type, from_id, to_type, to_id, type_id, label) "
                        "VALUES (?, ?, ?, ?, ?, ?)", links)
    con.close()
    return Seed(rows, links)


# --- client ---------------------------------------------------------------------------------


class _OneShotSession(requests.Session):
    """A session that opens a fresh connection per request.

    The shared server core writes headers and body separately without TCP_NODELAY, which costs
    ~40 ms per request on a kept-alive connection (delayed ACK); fresh connections avoid it.
    """

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            return super().request(*args, **kwargs)
        finally:
            self.close()


class Client:
    """A bearer-token session on the sandbox's HubSpot base URL."""

    def __init__(self, server: RunningServer, token: str | None = None, *, keep_alive: bool = False):
        creds = server.client_settings()
        self.base = creds["SOURCES__HUBSPOT__BASE_URL"]
        self.session = requests.Session() if keep_alive else _OneShotSession()
        self.session.headers["Authorization"] = f"Bearer {token or creds['SOURCES__HUBSPOT__ACCESS_TOKEN']}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.base + path, params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.base + path, json=body, timeout=10)

    def patch(self, path: str, body: Any) -> requests.Response:
        return self.session.patch(self.base + path, json=body, timeout=10)

    def search_all(self, object_type: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every result of a search, following `paging.next.after`."""
        results: list[dict[str, Any]] = []
        after = None
        while True:
            response = self.post(f"/crm/v3/objects/{object_type}/search",
                                 {**body, **({"after": after} if after else {})})
            assert response.status_code == 200, response.text
            page = response.json()
            results += page["results"]
            assert page["total"] >= len(results)
            if "paging" not in page:
                assert page["total"] == len(results)
                return results
            after = page["paging"]["next"]["after"]


def assert_error(response: requests.Response, status: int, category: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["category"] == category
    assert body["message"] and len(body["correlationId"]) == 36
    return body


@pytest.fixture(scope="module")
def seeded_server(tmp_path_factory: pytest.TempPathFactory):
    """A read-only seeded portal shared by the read tests."""
    data_dir = make_empty_state(tmp_path_factory.mktemp("hubspot") / "sandbox")
    seed = seed_state(data_dir)
    with RunningServer(data_dir) as server:
        yield server, seed


@pytest.fixture
def seeded(seeded_server):
    server, seed = seeded_server
    return Client(server), seed


@pytest.fixture
def fresh(empty_state: Path, serve):
    """A small seeded portal a test may write to; returns (client, seed, server)."""
    seed = seed_state(empty_state, companies=30, contacts=10, deals=10)
    server = serve(empty_state)
    return Client(server), seed, server


def ids(results: list[dict[str, Any]]) -> list[int]:
    return [int(r["id"]) for r in results]


# --- lists ----------------------------------------------------------------------------------


def test_list_paging_walks_every_record_once_following_links_verbatim(seeded):
    client, seed = seeded
    for archived in (False, True):
        seen: list[int] = []
        response = client.get("/crm/v3/objects/companies", limit=37, properties="name,domain,no_such_prop",
                              archived=str(archived).lower())
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            for record in page["results"]:
                assert set(record["properties"]) == {"name", "domain", "createdate", "hs_lastmodifieddate",
                                                     "hs_object_id"}
                assert record["archived"] is archived and ("archivedAt" in record) is archived
                assert all(v is None or isinstance(v, str) for v in record["properties"].values())
            seen += ids(page["results"])
            if "paging" not in page:
                break
            assert page["paging"]["next"]["link"].startswith(client.base + "/crm/v3/objects/companies?")
            response = client.session.get(page["paging"]["next"]["link"], timeout=10)
        expected = sorted(r.id for r in seed.rows["companies"] if r.archived is archived)
        assert seen == expected and len(set(seen)) == len(seen)


def test_list_record_shape_and_default_properties(seeded):
    client, seed = seeded
    row = seed.live("companies")[0]
    response = client.get("/crm/v3/objects/0-2", limit=1)  # HubSpot's object type id works too
    record = response.json()["results"][0]
    assert record == {
        "id": str(row.id),
        "properties": {"createdate": iso_ms(row.created), "domain": row.props.get("domain"),
                       "hs_lastmodifieddate": iso_ms(row.updated), "hs_object_id": str(row.id),
                       "name": row.props["name"]},
        "createdAt": iso_ms(row.created), "updatedAt": iso_ms(row.updated), "archived": False,
    }
    contact = client.get("/crm/v3/objects/contacts", limit=1).json()["results"][0]
    assert set(contact["properties"]) == {"firstname", "lastname", "email", "createdate", "lastmodifieddate",
                                          "hs_object_id"}
    assert contact["properties"]["lastmodifieddate"] == contact["updatedAt"]


def test_list_associations_and_single_get(seeded):
    client, seed = seeded
    company = next(r for r in seed.live("companies")
                   if any(l[0] == "companies" and l[1] == r.id and l[2] == "deals" for l in seed.associations))
    expected_deals = sorted({l[3] for l in seed.associations
                             if l[0] == "companies" and l[1] == company.id and l[2] == "deals"})
    got = client.get(f"/crm/v3/objects/companies/{company.id}", associations="deals,contacts,nonsense",
                     properties=["erp_customer_ref", "industry"]).json()
    assert got["properties"]["erp_customer_ref"] == company.props["erp_customer_ref"]
    assert got["properties"]["industry"] == company.props["industry"]
    pairs = {(a["id"], a["type"]) for a in got["associations"]["deals"]["results"]}
    assert pairs == {(str(d), t) for d in expected_deals for t in ("company_to_deal", "company_to_deal_unlabeled")}
    without = next(r for r in seed.live("companies")
                   if not any(l[0] == "companies" and l[1] == r.id for l in seed.associations))
    assert "associations" not in client.get(f"/crm/v3/objects/companies/{without.id}",
                                            associations="deals").json()
    listed = client.get("/crm/v3/objects/deals", limit=100, associations="companies").json()["results"]
    for deal in listed:
        (company_id,) = {a["id"] for a in deal["associations"]["companies"]["results"]}
        assert ("deals", int(deal["id"]), "companies", int(company_id), 5, "Primary") in seed.associations


def test_not_found_archived_and_bad_params(seeded):
    client, seed = seeded
    body = assert_error(client.get("/crm/v3/objects/companies/999999"), 404, "OBJECT_NOT_FOUND")
    assert body["context"] == {"id": ["999999"]}
    assert_error(client.get("/crm/v3/objects/companies/abc"), 404, "OBJECT_NOT_FOUND")
    archived = next(r for r in seed.rows["companies"] if r.archived)
    assert_error(client.get(f"/crm/v3/objects/companies/{archived.id}"), 404, "OBJECT_NOT_FOUND")
    got = client.get(f"/crm/v3/objects/companies/{archived.id}", archived="true").json()
    assert got["archived"] is True and got["archivedAt"] == iso_ms(archived.updated)
    assert_error(client.get("/crm/v3/objects/companies", limit=101), 400, "VALIDATION_ERROR")
    assert_error(client.get("/crm/v3/objects/companies", limit=0), 400, "VALIDATION_ERROR")
    assert_error(client.get("/crm/v3/objects/companies", after="xyz"), 400, "VALIDATION_ERROR")
    assert_error(client.get("/crm/v3/objects/widgets"), 400, "VALIDATION_ERROR")
    assert_error(client.session.put(client.base + "/crm/v3/objects/companies", timeout=10), 405,
                 "METHOD_NOT_ALLOWED")
    assert len(client.get("/crm/v3/objects/companies", limit=100).json()["results"]) == 100


def test_authentication_errors_never_echo_the_token(seeded):
    client, _ = seeded
    bare = requests.get(client.base + "/crm/v3/objects/companies", timeout=10)
    assert_error(bare, 401, "INVALID_AUTHENTICATION")
    wrong = "pat-na1-00000000-dead-beef-0000-000000000000"
    response = requests.get(client.base + "/crm/v3/objects/companies", timeout=10,
                            headers={"Authorization": f"Bearer {wrong}"})
    assert_error(response, 401, "INVALID_AUTHENTICATION")
    assert wrong not in response.text
    assert client.session.headers["Authorization"].split()[1] not in response.text


# --- search ---------------------------------------------------------------------------------


def _value(row: Row, name: str) -> str | None:
    columns = {"hs_lastmodifieddate": row.updated, "createdate": row.created, "hs_object_id": row.id}
    if name in columns:
        return str(columns[name])
    return row.props.get(name) or None


def _num(v: str) -> float:
    return float(Decimal(v))


def _ms(v: str) -> int:
    return parse_epoch_ms(v)  # type: ignore[return-value]


OPERATOR_CASES = [
    # (object type, filter, python predicate over the row's stored value v)
    ("companies", {"propertyName": "city", "operator": "EQ", "value": "pARIS"},
     lambda v: v == "Paris"),
    ("contacts", {"propertyName": "firstname", "operator": "EQ", "value": "edsger"},
     lambda v: v is not None and v.lower() == "edsger"),
    ("companies", {"propertyName": "lifecyclestage", "operator": "NEQ", "value": "customer"},
     lambda v: v is None or v != "customer"),
    ("companies", {"propertyName": "numberofemployees", "operator": "GT", "value": "100"},
     lambda v: v is not None and _num(v) > 100),
    ("companies", {"propertyName": "numberofemployees", "operator": "GTE", "value": 100},
     lambda v: v is not None and _num(v) >= 100),
    ("companies", {"propertyName": "numberofemployees", "operator": "LT", "value": "20"},
     lambda v: v is not None and _num(v) < 20),
    ("companies", {"propertyName": "numberofemployees", "operator": "LTE", "value": "20"},
     lambda v: v is not None and _num(v) <= 20),
    ("deals", {"propertyName": "amount", "operator": "BETWEEN", "value": "500", "highValue": "20000"},
     lambda v: v is not None and 500 <= _num(v) <= 20000),
    ("companies", {"propertyName": "industry", "operator": "IN", "values": [INDUSTRIES[0], INDUSTRIES[2]]},
     lambda v: v in {INDUSTRIES[0], INDUSTRIES[2]}),
    ("companies", {"propertyName": "industry", "operator": "NOT_IN", "values": [INDUSTRIES[0], INDUSTRIES[2]]},
     lambda v: v not in {INDUSTRIES[0], INDUSTRIES[2]}),
    ("companies", {"propertyName": "domain", "operator": "HAS_PROPERTY"}, lambda v: v is not None),
    ("companies", {"propertyName": "domain", "operator": "NOT_HAS_PROPERTY"}, lambda v: v is None),
    ("deals", {"propertyName": "closedate", "operator": "GTE", "value": iso_ms(TEST_NOW_MS - 100 * DAY)},
     lambda v: v is not None and _ms(v) >= TEST_NOW_MS - 100 * DAY),
    ("deals", {"propertyName": "closedate", "operator": "LT", "value": str(TEST_NOW_MS - 100 * DAY)},
     lambda v: v is not None and _ms(v) < TEST_NOW_MS - 100 * DAY),
    ("companies", {"propertyName": "hs_object_id", "operator": "IN", "values": ["3", "4", "250", "99999"]},
     lambda v: v in {"3", "4", "250"}),
    ("deals", {"propertyName": "createdate", "operator": "LTE", "value": str(TEST_NOW_MS - 100 * DAY)},
     lambda v: int(v) <= TEST_NOW_MS - 100 * DAY),
]


@pytest.mark.parametrize("object_type,flt,predicate", OPERATOR_CASES,
                         ids=[f"{c[0]}-{c[1]['propertyName']}-{c[1]['operator']}" for c in OPERATOR_CASES])
def test_search_operator_returns_exactly_the_matching_set(seeded, object_type, flt, predicate):
    client, seed = seeded
    found = ids(client.search_all(object_type, {"filterGroups": [{"filters": [flt]}], "limit": 200}))
    expected = sorted(r.id for r in seed.live(object_type) if predicate(_value(r, flt["propertyName"])))
    assert expected, "the seed should make every case non-trivial"
    assert sorted(found) == expected and len(set(found)) == len(found)


def test_search_or_of_ands_and_incremental_window(seeded):
    client, seed = seeded
    since = sorted({r.updated for r in seed.live("companies")})[-8]
    body = {"filterGroups": [
        {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(since)},
                     {"propertyName": "city", "operator": "EQ", "value": "london"}]},
        {"filters": [{"propertyName": "erp_customer_ref", "operator": "EQ", "value": "c00001"}]},
    ], "limit": 200}
    expected = sorted(r.id for r in seed.live("companies")
                      if (r.updated >= since and r.props["city"] == "London") or r.id == 1)
    assert sorted(ids(client.search_all("companies", body))) == expected

    # The incremental read: modified since T, ascending, walked in small pages across ties.
    body = {"filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                                           "value": iso_ms(since)}]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["name"], "limit": 7}
    results = client.search_all("companies", body)
    expected_rows = sorted((r for r in seed.live("companies") if r.updated >= since), key=lambda r: (r.updated, r.id))
    assert ids(results) == [r.id for r in expected_rows]
    assert [x["properties"]["hs_lastmodifieddate"] for x in results] == [iso_ms(r.updated) for r in expected_rows]


def test_search_sorting(seeded):
    client, seed = seeded
    by_amount = client.search_all("deals", {"sorts": [{"propertyName": "amount", "direction": "DESCENDING"}],
                                            "properties": ["amount"], "limit": 200})
    live = seed.live("deals")
    with_amount = sorted((r for r in live if "amount" in r.props), key=lambda r: (-_num(r.props["amount"]), r.id))
    assert ids(by_amount) == [r.id for r in with_amount] + sorted(r.id for r in live if "amount" not in r.props)
    by_name = client.search_all("contacts", {"sorts": ["lastname"], "limit": 200})
    assert ids(by_name) == [r.id for r in sorted(seed.live("contacts"),
                                                 key=lambda r: (r.props["lastname"].lower(), r.id))]
    newest_first = client.post("/crm/v3/objects/companies/search",
                               {"sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "DESCENDING"}],
                                "limit": 5}).json()
    top = sorted(seed.live("companies"), key=lambda r: (-r.updated, r.id))[:5]
    assert ids(newest_first["results"]) == [r.id for r in top]
    assert newest_first["paging"]["next"]["after"] == "5"
    assert newest_first["total"] == len(seed.live("companies"))


def test_search_validation_errors(seeded):
    client, _ = seeded
    url = "/crm/v3/objects/companies/search"
    flt = {"propertyName": "city", "operator": "EQ", "value": "Paris"}
    assert_error(client.post(url, {"limit": 201}), 400, "VALIDATION_ERROR")
    assert client.post(url, {"limit": 200}).status_code == 200
    assert_error(client.post(url, {"filterGroups": [{"filters": [flt]}] * 6}), 400, "VALIDATION_ERROR")
    assert_error(client.post(url, {"filterGroups": [{"filters": [flt] * 7}]}), 400, "VALIDATION_ERROR")
    assert_error(client.post(url, {"filterGroups": [{"filters": [flt] * 6}] * 3 + [{"filters": [flt]}]}),
                 400, "VALIDATION_ERROR")
    assert client.post(url, {"filterGroups": [{"filters": [flt] * 6}] * 3}).status_code == 200
    assert_error(client.post(url, {"filterGroups": [{"filters": [{**flt, "propertyName": "nope"}]}]}),
                 400, "VALIDATION_ERROR")
    assert_error(client.post(url, {"filterGroups": [{"filters": [{**flt, "operator": "LIKE"}]}]}),
                 400, "VALIDATION_ERROR")
    assert_error(client.post(url, {"filterGroups": [{"filters": [
        {"propertyName": "numberofemployees", "operator": "GT", "value": "many"}]}]}), 400, "VALIDATION_ERROR")
    assert_error(client.session.post(client.base + url, data=b"{not json", timeout=10), 400, "VALIDATION_ERROR")


def test_search_stops_at_ten_thousand_results(empty_state, serve):
    con = store.connect(empty_state)
    with con:
        hubspot_properties.install(con, TEST_NOW_MS)
        con.executemany("INSERT INTO hs_objects (object_type, id, properties, created_at, updated_at) "
                        "VALUES ('contacts', ?, '{}', ?, ?)",
                        [(i, TEST_NOW_MS - i, TEST_NOW_MS - i // 3) for i in range(1, 10_051)])
    con.close()
    client = Client(serve(empty_state))
    body = {"filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], "limit": 200}
    page = client.post("/crm/v3/objects/contacts/search", {**body, "after": "9800"}).json()
    assert page["total"] == 10_050 and len(page["results"]) == 200
    assert page["paging"]["next"]["after"] == "10000"
    beyond = client.post("/crm/v3/objects/contacts/search", {**body, "after": page["paging"]["next"]["after"]})
    assert_error(beyond, 400, "VALIDATION_ERROR")
    assert "10000" in beyond.json()["message"]


# --- writes ---------------------------------------------------------------------------------


def test_writes_stamp_monotonic_updated_at_and_show_up_incrementally(fresh):
    client, seed, _ = fresh
    before = client.post("/crm/v3/objects/companies/search", {"limit": 1}).json()["total"]
    created = client.post("/crm/v3/objects/companies", {"properties": {
        "name": "Wayne Enterprises", "numberofemployees": 5000, "industry": "BANKING", "domain": "",
        "vat_number": "GB123456789"}})
    assert created.status_code == 201, created.text
    record = created.json()
    assert int(record["id"]) >= API_ID_FLOOR, "API-created ids never collide with generated ones"
    assert record["properties"]["numberofemployees"] == "5000" and record["properties"]["domain"] is None
    assert parse_epoch_ms(record["updatedAt"]) >= TEST_NOW_MS and record["createdAt"] == record["updatedAt"]

    stamps = [parse_epoch_ms(record["updatedAt"])]
    target = seed.live("companies")[0].id
    for n in range(3):
        patched = client.patch(f"/crm/v3/objects/companies/{target}",
                               {"properties": {"city": f"Gotham {n}", "domain": ""}})
        assert patched.status_code == 200, patched.text
        assert patched.json()["properties"]["city"] == f"Gotham {n}"
        stamps.append(parse_epoch_ms(patched.json()["updatedAt"]))
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    after_patch = client.get(f"/crm/v3/objects/companies/{target}", properties="domain,city").json()
    assert after_patch["properties"]["domain"] is None
    assert after_patch["createdAt"] == iso_ms(seed.live("companies")[0].created)

    since = {"filterGroups": [{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(TEST_NOW_MS)}]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]}
    assert ids(client.search_all("companies", since)) == [int(record["id"]), target]
    assert client.post("/crm/v3/objects/companies/search", {"limit": 1}).json()["total"] == before + 1

    deal = client.post("/crm/v3/objects/deals", {"properties": {
        "dealname": "Big one", "amount": "1500.50", "dealstage": "closedwon", "closedate": "2026-10-01T12:00:00Z",
        "engagement_type": "retainer"}}).json()
    assert deal["properties"]["closedate"] == "2026-10-01T12:00:00.000Z"
    full = client.get(f"/crm/v3/objects/deals/{deal['id']}", properties="hs_is_closed_won,hs_is_closed").json()
    assert full["properties"]["hs_is_closed_won"] == "true" and full["properties"]["hs_is_closed"] == "true"
    deleted = client.session.delete(f"{client.base}/crm/v3/objects/deals/{deal['id']}", timeout=10)
    assert deleted.status_code == 204
    assert_error(client.get(f"/crm/v3/objects/deals/{deal['id']}"), 404, "OBJECT_NOT_FOUND")


def test_write_validation_errors(fresh):
    client, seed, _ = fresh
    target = seed.live("companies")[0].id
    url = f"/crm/v3/objects/companies/{target}"
    body = assert_error(client.patch(url, {"properties": {"no_such_thing": "x", "name": "ok"}}),
                        400, "VALIDATION_ERROR")
    assert body["message"].startswith("Property values were not valid: ")
    details = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert details == [{"isValid": False, "message": 'Property "no_such_thing" does not exist',
                        "error": "PROPERTY_DOESNT_EXIST", "name": "no_such_thing",
                        "localizedErrorMessage": 'Property "no_such_thing" does not exist'}]
    assert body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    for props, code in [({"hs_object_id": "5"}, "READ_ONLY_VALUE"), ({"createdate": "1"}, "READ_ONLY_VALUE"),
                        ({"industry": "SPACE_PIRACY"}, "INVALID_OPTION"),
                        ({"numberofemployees": "lots"}, "INVALID_DECIMAL")]:
        body = assert_error(client.patch(url, {"properties": props}), 400, "VALIDATION_ERROR")
        assert body["errors"][0]["code"] == code
    assert_error(client.patch("/crm/v3/objects/deals/1", {"properties": {"hs_is_closed": "true"}}),
                 400, "VALIDATION_ERROR")
    assert_error(client.patch(url, {"properties": {}}), 400, "VALIDATION_ERROR")
    assert_error(client.patch("/crm/v3/objects/companies/424242", {"properties": {"name": "x"}}),
                 404, "OBJECT_NOT_FOUND")
    assert_error(client.post("/crm/v3/objects/companies", {"properties": {"name": "x"}, "associations": [
        {"to": {"id": 1}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 190}]}]}),
        400, "VALIDATION_ERROR")
    unchanged = client.get(url, properties="name").json()["properties"]["name"]
    assert unchanged == seed.live("companies")[0].props["name"]


def test_batch_update_complete_and_partial(fresh):
    client, seed, _ = fresh
    live = [r.id for r in seed.live("companies")]
    url = "/crm/v3/objects/companies/batch/update"
    ok = client.post(url, {"inputs": [{"id": str(i), "properties": {"city": "Metropolis"}} for i in live[:3]]})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["status"] == "COMPLETE" and "errors" not in body and body["startedAt"] and body["completedAt"]
    assert sorted(ids(body["results"])) == live[:3]
    assert {r["properties"]["city"] for r in body["results"]} == {"Metropolis"}

    archived = next(r.id for r in seed.rows["companies"] if r.archived)
    partial = client.post(url, {"inputs": [
        {"id": str(live[3]), "properties": {"city": "Smallville"}},
        {"id": "987654", "properties": {"city": "Nowhere"}},
        {"id": str(archived), "properties": {"city": "Nowhere"}},
        {"id": str(live[4]), "properties": {"lifecyclestage": "not_a_stage"}},
    ]})
    assert partial.status_code == 207, partial.text
    body = partial.json()
    assert body["status"] == "COMPLETE" and body["numErrors"] == 2 and ids(body["results"]) == [live[3]]
    by_category = {e["category"]: e for e in body["errors"]}
    assert sorted(by_category["OBJECT_NOT_FOUND"]["context"]["ids"]) == sorted(["987654", str(archived)])
    assert by_category["VALIDATION_ERROR"]["context"]["ids"] == [str(live[4])]
    assert all(e["status"] == "error" and e["message"] for e in body["errors"])
    assert client.get(f"/crm/v3/objects/companies/{live[3]}", properties="city").json()["properties"]["city"] \
        == "Smallville"
    assert client.get(f"/crm/v3/objects/companies/{live[4]}", properties="lifecyclestage").json()[
        "properties"]["lifecyclestage"] == seed.live("companies")[4].props.get("lifecyclestage")

    too_many = client.post(url, {"inputs": [{"id": str(i), "properties": {"city": "x"}} for i in range(101)]})
    assert_error(too_many, 400, "VALIDATION_ERROR")
    assert_error(client.post(url, {"inputs": [{"id": "1", "properties": {"city": "a"}}] * 2}), 400,
                 "VALIDATION_ERROR")


def test_batch_read_and_create(fresh):
    client, seed, _ = fresh
    live = [r.id for r in seed.live("companies")]
    read = client.post("/crm/v3/objects/companies/batch/read",
                       {"inputs": [{"id": str(live[0])}, {"id": str(live[1])}], "properties": ["erp_customer_ref"]})
    assert read.status_code == 200 and sorted(ids(read.json()["results"])) == live[:2]
    assert read.json()["results"][0]["properties"]["erp_customer_ref"].startswith("C")
    partial = client.post("/crm/v3/objects/companies/batch/read", {"inputs": [{"id": str(live[0])}, {"id": "5555"}]})
    assert partial.status_code == 207
    assert partial.json()["errors"][0]["context"] == {"ids": ["5555"]}
    created = client.post("/crm/v3/objects/contacts/batch/create", {"inputs": [
        {"properties": {"firstname": "Lois", "email": "lois@planet.example"},
         "associations": [{"to": {"id": live[0]}, "types": [
             {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}]}]},
        {"properties": {"firstname": "Clark"}}]})
    assert created.status_code == 201, created.text
    lois = created.json()["results"][0]
    links = client.get(f"/crm/v4/objects/contacts/{lois['id']}/associations/companies").json()["results"]
    assert links == [{"toObjectId": live[0], "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
        {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]}]
    assert_error(client.post("/crm/v3/objects/contacts/batch/create",
                             {"inputs": [{"properties": {"firstname": "ok"}}, {"properties": {"bogus": "x"}}]}),
                 400, "VALIDATION_ERROR")


# --- properties -----------------------------------------------------------------------------


def test_properties_and_groups(fresh):
    client, seed, _ = fresh
    listed = client.get("/crm/v3/properties/companies").json()["results"]
    by_name = {p["name"]: p for p in listed}
    assert set(hubspot_properties.property_names("companies")) == set(by_name)
    assert by_name["erp_customer_ref"]["hubspotDefined"] is False and by_name["name"]["hubspotDefined"] is True
    assert by_name["hs_object_id"]["modificationMetadata"]["readOnlyValue"] is True
    assert {"createdAt", "updatedAt", "archived", "options", "fieldType", "groupName"} <= set(by_name["industry"])
    one = client.get("/crm/v3/properties/0-3/dealstage").json()
    assert [o["value"] for o in one["options"]][-2:] == ["closedwon", "closedlost"]
    assert_error(client.get("/crm/v3/properties/companies/nope"), 404, "OBJECT_NOT_FOUND")
    assert client.get("/crm/v3/properties/companies", archived="true").json() == {"results": []}

    group = client.post("/crm/v3/properties/companies/groups",
                        {"name": "financial_status", "label": "Financial status", "displayOrder": 5})
    assert group.status_code == 201 and group.json() == {"name": "financial_status", "label": "Financial status",
                                                          "displayOrder": 5, "archived": False}
    assert_error(client.post("/crm/v3/properties/companies/groups", {"name": "financial_status", "label": "x"}),
                 409, "CONFLICT")
    assert "financial_status" in {g["name"] for g in client.get("/crm/v3/properties/companies/groups").json()["results"]}

    spec = {"name": "financial_status", "label": "Financial status", "type": "enumeration", "fieldType": "select",
            "groupName": "financial_status", "options": [
                {"label": "Good standing", "value": "good_standing"}, {"label": "Overdue", "value": "overdue"}]}
    created = client.post("/crm/v3/properties/companies", spec)
    assert created.status_code == 201, created.text
    assert created.json()["hubspotDefined"] is False and created.json()["options"][1]["value"] == "overdue"
    assert client.get("/crm/v3/properties/companies/financial_status").json()["groupName"] == "financial_status"
    assert_error(client.post("/crm/v3/properties/companies", spec), 409, "CONFLICT")
    assert_error(client.post("/crm/v3/properties/companies", {**spec, "name": "x1", "groupName": "missing"}),
                 400, "VALIDATION_ERROR")
    assert_error(client.post("/crm/v3/properties/companies", {**spec, "name": "x2", "fieldType": "textarea"}),
                 400, "VALIDATION_ERROR")
    assert_error(client.post("/crm/v3/properties/companies", {**spec, "name": "x3", "type": "money"}),
                 400, "VALIDATION_ERROR")
    balance = client.post("/crm/v3/properties/companies", {"name": "ar_balance", "label": "AR balance",
                                                           "type": "number", "fieldType": "number",
                                                           "groupName": "financial_status"})
    assert balance.status_code == 201

    target = seed.live("companies")[0].id
    update = client.post("/crm/v3/objects/companies/batch/update", {"inputs": [
        {"id": str(target), "properties": {"financial_status": "overdue", "ar_balance": "1234.56"}}]})
    assert update.status_code == 200, update.text
    assert update.json()["results"][0]["properties"]["ar_balance"] == "1234.56"
    bad = client.patch(f"/crm/v3/objects/companies/{target}", {"properties": {"financial_status": "bankrupt"}})
    assert assert_error(bad, 400, "VALIDATION_ERROR")["errors"][0]["code"] == "INVALID_OPTION"
    options = spec["options"] + [{"label": "In dispute", "value": "in_dispute"}]
    assert client.patch("/crm/v3/properties/companies/financial_status", {"options": options}).status_code == 200
    assert client.patch(f"/crm/v3/objects/companies/{target}",
                        {"properties": {"financial_status": "in_dispute"}}).status_code == 200


# --- associations and notes -----------------------------------------------------------------


def test_v4_associations_paging_and_batch_read(seeded):
    client, seed = seeded
    per_company: dict[int, set[int]] = {}
    for f, fid, t, tid, _, _ in seed.associations:
        if f == "companies" and t == "contacts":
            per_company.setdefault(fid, set()).add(tid)
    company, contacts = max(per_company.items(), key=lambda kv: len(kv[1]))
    assert len(contacts) >= 2
    walked: list[int] = []
    response = client.get(f"/crm/v4/objects/companies/{company}/associations/contacts", limit=1)
    while True:
        page = response.json()
        for result in page["results"]:
            assert {t["typeId"] for t in result["associationTypes"]} == {2, 280}
            assert isinstance(result["toObjectId"], int)
        walked += [r["toObjectId"] for r in page["results"]]
        if "paging" not in page:
            break
        response = client.session.get(page["paging"]["next"]["link"], timeout=10)
    assert walked == sorted(contacts)

    lonely = next(r.id for r in seed.rows["companies"] if r.id not in per_company)
    batch = client.post("/crm/v4/associations/companies/contacts/batch/read",
                        {"inputs": [{"id": str(company)}, {"id": str(lonely)}]})
    assert batch.status_code == 207, batch.text
    body = batch.json()
    assert [r["from"]["id"] for r in body["results"]] == [str(company)]
    assert sorted(t["toObjectId"] for t in body["results"][0]["to"]) == sorted(contacts)
    assert body["errors"][0]["context"]["fromObjectId"] == [str(lonely)]
    only = client.post("/crm/v4/associations/0-2/0-1/batch/read", {"inputs": [{"id": str(company)}]})
    assert only.status_code == 200 and "errors" not in only.json()


def test_notes_on_the_company_timeline(fresh):
    client, seed, _ = fresh
    company = seed.live("companies")[2].id
    note = client.post("/crm/v3/objects/notes", {
        "properties": {"hs_note_body": "<p>Invoice INV-0042 issued</p>", "hs_timestamp": str(TEST_NOW_MS)},
        "associations": [{"to": {"id": str(company)}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 190}]}]})
    assert note.status_code == 201, note.text
    note_id = note.json()["id"]
    assert note.json()["properties"]["hs_timestamp"] == iso_ms(TEST_NOW_MS)
    assert_error(client.post("/crm/v3/objects/notes", {"properties": {"hs_note_body": "no time"}}),
                 400, "VALIDATION_ERROR")
    listed = client.get("/crm/v3/objects/notes", associations="companies",
                        properties="hs_note_body,hs_timestamp").json()["results"]
    (mine,) = [n for n in listed if n["id"] == note_id]
    assert mine["properties"]["hs_note_body"] == "<p>Invoice INV-0042 issued</p>"
    assert set(mine["properties"]) >= {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}
    assert mine["associations"]["companies"]["results"] == [{"id": str(company), "type": "note_to_company"}]
    on_company = client.get(f"/crm/v3/objects/companies/{company}", associations="notes").json()
    assert {"id": note_id, "type": "company_to_note"} in on_company["associations"]["notes"]["results"]


# --- rate limits and faults -----------------------------------------------------------------


def test_ten_secondly_rate_limit(fresh):
    client, _, server = fresh
    server.settings.rate_limits = True
    for n in range(190):
        response = client.get("/crm/v3/objects/companies", limit=1)
        assert response.status_code == 200
        assert response.headers["X-HubSpot-RateLimit-Max"] == "190"
        assert response.headers["X-HubSpot-RateLimit-Remaining"] == str(189 - n)
        assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    limited = client.get("/crm/v3/objects/companies", limit=1)
    assert limited.status_code == 429
    body = limited.json()
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert body["status"] == "error" and body["correlationId"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 10


def test_search_secondly_limit_and_starter_tier(fresh):
    client, _, server = fresh
    server.settings.rate_limits = True
    results = []
    started = time.monotonic()
    for _ in range(6):
        results.append(client.post("/crm/v3/objects/companies/search", {"limit": 1}))
    assert time.monotonic() - started < 1.0, "the six searches must land within one second"
    assert [r.status_code for r in results] == [200] * 5 + [429]
    assert not any(h.startswith("X-HubSpot-RateLimit") for h in results[0].headers)
    assert results[-1].json()["policyName"] == "SECONDLY" and "Retry-After" in results[-1].headers

    server.settings.hubspot_tier = "starter"
    assert client.get("/crm/v3/objects/companies", limit=1).headers["X-HubSpot-RateLimit-Max"] == "100"


def test_fault_storm_looks_like_a_burst_limit(fresh):
    client, _, server = fresh
    server.settings.faults.storm_rate = 1.0
    server.settings.faults.retry_after = 0
    response = client.get("/crm/v3/objects/companies")
    assert response.status_code == 429 and response.headers["Retry-After"] == "0"
    assert response.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert response.json()["errorType"] == "RATE_LIMIT"


def test_fault_rejects_a_deterministic_share_of_batch_update_inputs(fresh):
    client, seed, server = fresh
    live = [str(r.id) for r in seed.live("companies")]
    url = "/crm/v3/objects/companies/batch/update"
    body = {"inputs": [{"id": i, "properties": {"city": "Gotham"}} for i in live]}
    server.settings.faults.reject_rate = 0.3

    first, again = client.post(url, body), client.post(url, body)
    assert first.status_code == 207 and again.status_code == 207, first.text
    rejected = [i for e in first.json()["errors"] for i in e["context"]["ids"]]
    assert 0 < len(rejected) < len(live), "a share, neither none nor all"
    assert rejected == [i for e in again.json()["errors"] for i in e["context"]["ids"]], "the same ones each time"
    assert all(e["category"] == "VALIDATION_ERROR" and e["status"] == "error" and e["message"]
               for e in first.json()["errors"])
    assert sorted(r["id"] for r in first.json()["results"]) == sorted(set(live) - set(rejected))
    assert client.get(f"/crm/v3/objects/companies/{rejected[0]}", properties="city").json()[
        "properties"]["city"] != "Gotham", "a rejected input is not applied"

    server.settings.faults.seed = 1
    other = client.post(url, body).json()
    assert [i for e in other["errors"] for i in e["context"]["ids"]] != rejected, "another seed, other records"

    server.settings.faults.reject_rate = 0.0
    accepted = client.post(url, body)
    assert accepted.status_code == 200 and len(accepted.json()["results"]) == len(live)


def test_daily_limit_answers_429_daily_once_exceeded(fresh):
    client, _, server = fresh
    base = server.base_url
    assert requests.put(f"{base}/_sandbox/settings", json={"hubspot_daily_limit": 3}, timeout=5).ok
    answers = [client.get("/crm/v3/objects/companies", limit=1) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429], "enforced with rate_limits off too"
    assert answers[0].headers["X-HubSpot-RateLimit-Daily"] == "3"
    assert answers[2].headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    body = answers[3].json()
    assert body["policyName"] == "DAILY" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your daily limit."

    # a changed limit counts afresh; 0 switches it off
    assert requests.put(f"{base}/_sandbox/settings", json={"hubspot_daily_limit": 1}, timeout=5).ok
    assert client.get("/crm/v3/objects/companies", limit=1).status_code == 200
    assert client.get("/crm/v3/objects/companies", limit=1).status_code == 429
    assert requests.put(f"{base}/_sandbox/settings", json={"hubspot_daily_limit": 0}, timeout=5).ok
    assert client.get("/crm/v3/objects/companies", limit=1).status_code == 200


def test_request_log_records_arrivals(fresh):
    client, _, server = fresh
    requests.delete(f"{server.base_url}/_sandbox/stats", timeout=5)
    before = time.time()
    client.get("/crm/v3/objects/companies", limit=1)
    client.post("/crm/v3/objects/companies/search", {"limit": 1})
    log = requests.get(f"{server.base_url}/_sandbox/requests", timeout=5).json()["requests"]
    assert [(e["system"], e["route"]) for e in log] == [
        ("hubspot", "GET /crm/v3/objects/companies"), ("hubspot", "POST /crm/v3/objects/companies/search")]
    assert before <= log[0]["t"] <= log[1]["t"] <= time.time()


# --- serving rate (printed, not asserted) ---------------------------------------------------


def test_serving_rate(seeded_server):
    client = Client(seeded_server[0], keep_alive=True)
    client.get("/crm/v3/objects/companies", limit=1)
    rounds = 40
    started = time.perf_counter()
    served = 0
    for _ in range(rounds):
        served += len(client.get("/crm/v3/objects/companies", limit=100,
                                 properties="name,domain,city,industry,erp_customer_ref").json()["results"])
    list_rate = served / (time.perf_counter() - started)
    started = time.perf_counter()
    served = 0
    body = {"filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["name", "domain", "city", "industry", "erp_customer_ref"], "limit": 200}
    for _ in range(rounds):
        served += len(client.post("/crm/v3/objects/companies/search", body).json()["results"])
    search_rate = served / (time.perf_counter() - started)
    print(f"\nHubSpot sandbox serving rate: list page of 100 → {list_rate:,.0f} records/s; "
          f"search page of 200 → {search_rate:,.0f} records/s")
