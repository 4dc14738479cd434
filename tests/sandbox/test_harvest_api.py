"""Harvest API v2 sandbox, exercised over HTTP on loopback like a connector would.

A small firm is seeded straight into the `hv_*` tables (`seed_harvest`); expectations are
computed in Python from the same seed, so every list, filter and pagination mode is checked
record for record against what was stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import json
import random
import re
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox import store
from sandbox.server import harvest_api
from sandbox.server.app import RunningServer
from sandbox.server.core import FaultSettings
from tests.conftest import TEST_NOW_MS, make_empty_state

NOW = TEST_NOW_MS // 1000  # 2026-11-01T00:00:00Z
DAY = 86_400
SPEC = Path(__file__).parents[2] / "sandbox/vendor_specs/harvest/harvest-openapi.json"
USER_AGENT = "ConcordTests (data-platform@example.com)"
INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid "
                         "for other reasons.",
}


# --- seeding --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Seed:
    """The rows written to each `hv_*` table, as dicts keyed by column name."""

    tables: dict[str, list[dict[str, Any]]]

    def __getitem__(self, table: str) -> list[dict[str, Any]]:
        return self.tables[table]

    def by_id(self, table: str) -> dict[int, dict[str, Any]]:
        return {row["id"]: row for row in self.tables[table]}


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_harvest(data_dir: Path, time_entries: int = 5000, expenses: int = 300, seed: int = 7) -> Seed:
    """Write a small, realistic Harvest account into the sandbox state.

    Many time entries share a spent_date and an updated_at (12 distinct stamps), and two
    clients share a created_at, so orderings need their id tie-break. Older entries are
    approved (closed, locked) and some of those invoiced (billed).
    """
    rng = random.Random(seed)
    base = NOW - 400 * DAY
    currencies = ["EUR", "USD", "GBP"]
    clients = [dict(id=101 + i, name=f"Client {i}", is_active=int(i != 5), address=f"{i} Main St",
                    statement_key=f"stmt{i:04d}", currency=currencies[i % 3],
                    created_at=base + (i // 2) * DAY, updated_at=base + (i // 2) * DAY + 3600 * i)
               for i in range(6)]
    users = [dict(id=201 + i, first_name=f"First{i}", last_name=f"Last{i}", email=f"u{i}@firm.example",
                  telephone="", timezone="Europe/Amsterdam", weekly_capacity=144000,
                  is_contractor=int(i == 6), is_active=int(i != 7),
                  roles=json.dumps(["Consultant"] if i else ["Partner"]),
                  access_roles=json.dumps(["administrator"] if i == 0 else ["member"]),
                  default_hourly_rate=100.0 + 10 * i, cost_rate=50.0 + 5 * i,
                  created_at=base + i * DAY, updated_at=base + i * DAY + 7)
             for i in range(8)]
    tasks = [dict(id=301 + i, name=f"Task {i}", billable_by_default=int(i != 3),
                  default_hourly_rate=90.0, is_default=int(i < 2), is_active=int(i != 4),
                  created_at=base, updated_at=base + i * 60)
             for i in range(5)]
    bill_by = ["Project", "Tasks", "People", "none"]
    projects = [dict(id=401 + i, client_id=101 + i % 5, name=f"Project {i}", code=f"SO{i:04d}",
                     is_active=int(i != 8), is_billable=int(i % 4 != 3), is_fixed_fee=int(i == 2),
                     bill_by=bill_by[i % 4], budget=500.0, budget_by="project" if i % 2 else "none",
                     budget_is_monthly=0, notify_when_over_budget=1,
                     over_budget_notification_percentage=80.0, show_budget_to_all=0,
                     cost_budget=None, cost_budget_include_expenses=0, hourly_rate=150.0,
                     fee=25000.0 if i == 2 else None, notes="", starts_on="2025-10-01", ends_on=None,
                     created_at=base + 10 * DAY + i * DAY, updated_at=base + 20 * DAY + i * 3600)
                for i in range(10)]
    user_assignments, task_assignments = [], []
    for p in projects:
        for u in rng.sample(users[:7], 4):
            user_assignments.append(dict(
                id=5000 + len(user_assignments), project_id=p["id"], user_id=u["id"], is_active=1,
                is_project_manager=int(u["id"] == 201), use_default_rates=int(u["id"] % 2 == 0),
                hourly_rate=120.0, budget=None, created_at=p["created_at"], updated_at=p["created_at"]))
        for t in tasks[:4]:
            task_assignments.append(dict(
                id=6000 + len(task_assignments), project_id=p["id"], task_id=t["id"], is_active=1,
                billable=t["billable_by_default"], hourly_rate=110.0, budget=None,
                created_at=p["created_at"], updated_at=p["created_at"]))
    stamps = sorted(rng.sample(range(NOW - 60 * DAY, NOW - DAY), 12))
    first_day = dt.date(2026, 9, 1)
    entries = []
    for i in range(time_entries):
        ua = rng.choice(user_assignments)
        ta = rng.choice([t for t in task_assignments if t["project_id"] == ua["project_id"]])
        spent = first_day + dt.timedelta(days=rng.randrange(60))
        closed = int(spent < dt.date(2026, 10, 1) and rng.random() < 0.8)
        billed = int(closed and rng.random() < 0.5)
        updated = rng.choice(stamps)
        entries.append(dict(
            id=700_000 + i, spent_date=spent.isoformat(), user_id=ua["user_id"],
            user_assignment_id=ua["id"], client_id=next(p["client_id"] for p in projects
                                                       if p["id"] == ua["project_id"]),
            project_id=ua["project_id"], task_id=ta["task_id"], task_assignment_id=ta["id"],
            hours=rng.choice([0.25, 0.5, 1.0, 1.5, 2.0, 3.75, 8.0]), notes=rng.choice([None, "Workshop"]),
            is_locked=closed, is_closed=closed, is_billed=billed,
            locked_reason=("Item Invoiced and Approved and Locked for this Time Period" if billed else
                           "Item Approved and Locked for this Time Period" if closed else None),
            billable=ta["billable"], budgeted=1, billable_rate=150.0 if ta["billable"] else None,
            cost_rate=60.0, created_at=updated - rng.randrange(0, 3) * DAY, updated_at=updated))
    categories = [dict(id=801 + i, name=f"Category {i}", unit_name="mile" if i == 0 else None,
                       unit_price=0.5 if i == 0 else None, is_active=int(i != 3),
                       created_at=base + i, updated_at=base + i)
                  for i in range(4)]
    expense_rows = []
    for i in range(expenses):
        ua = rng.choice(user_assignments)
        category = rng.choice(categories)
        closed = int(rng.random() < 0.5)
        expense_rows.append(dict(
            id=900_000 + i, client_id=next(p["client_id"] for p in projects if p["id"] == ua["project_id"]),
            project_id=ua["project_id"], user_id=ua["user_id"], user_assignment_id=ua["id"],
            expense_category_id=category["id"], spent_date=(first_day + dt.timedelta(days=rng.randrange(60))).isoformat(),
            total_cost=round(rng.uniform(5, 500), 2), units=10.0 if category["unit_name"] else None,
            notes="Taxi", billable=int(rng.random() < 0.7), is_closed=closed, is_locked=closed,
            is_billed=int(closed and rng.random() < 0.5), locked_reason=None,
            created_at=stamps[i % 12], updated_at=stamps[i % 12]))
    tables = {
        "hv_clients": clients, "hv_users": users, "hv_tasks": tasks, "hv_projects": projects,
        "hv_user_assignments": user_assignments, "hv_task_assignments": task_assignments,
        "hv_time_entries": entries, "hv_expense_categories": categories, "hv_expenses": expense_rows,
    }
    con = store.connect(data_dir)
    with con:
        for table, rows in tables.items():
            columns = list(rows[0])
            con.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                            f"({', '.join('?' * len(columns))})", [list(r.values()) for r in rows])
    con.close()
    return Seed(tables)


# --- client -------------------------------------------------------------------------------------

class Harvest:
    """A bare Harvest v2 client: the headers a connector sends, and link-following."""

    def __init__(self, server: Any):
        settings = server.client_settings()
        self.base = settings["SOURCES__HARVEST__BASE_URL"]
        self.token = settings["SOURCES__HARVEST__ACCESS_TOKEN"]
        self.account = settings["SOURCES__HARVEST__ACCOUNT_ID"]
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {self.token}",
                                     "Harvest-Account-Id": self.account, "User-Agent": USER_AGENT})

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        return self.session.request(method, url, timeout=30, **kwargs)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.request("GET", path, params=params)

    def ok(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def walk(self, path: str, plural: str, **params: Any) -> tuple[list[dict[str, Any]], list[dict]]:
        """Every record, following `links.next` verbatim; also returns each page's envelope."""
        records, pages = [], []
        body = self.ok(path, **params)
        while True:
            records.extend(body[plural])
            pages.append({k: v for k, v in body.items() if k != plural})
            if body["links"]["next"] is None:
                return records, pages
            body = self.ok(body["links"]["next"])


def start(serve: Any, data_dir: Path, settings: Any = None) -> RunningServer:
    return serve(data_dir, settings=settings)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seed]:
    """One seeded state shared by the read-only tests."""
    data_dir = make_empty_state(tmp_path_factory.mktemp("harvest") / "sandbox")
    return data_dir, seed_harvest(data_dir)


@pytest.fixture(scope="module")
def api(world: tuple[Path, Seed]) -> Iterator[Harvest]:
    """One server over the shared state for the read-only tests (the same `RunningServer` the
    `serve` fixture starts; module-scoped because each server takes 0.5 s to stop)."""
    with RunningServer(world[0]) as server:
        yield Harvest(server)


def newest_created(rows: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True)]


def newest_spent(rows: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in sorted(rows, key=lambda r: (r["spent_date"], r["id"]), reverse=True)]


def endpoints(seed: Seed) -> list[tuple[str, str, list[int]]]:
    """(path, envelope key, ids in the documented order) for every list endpoint."""
    def in_project(table: str, project_id: int) -> list[dict[str, Any]]:
        return [r for r in seed[table] if r["project_id"] == project_id]
    return [
        ("/clients", "clients", newest_created(seed["hv_clients"])),
        ("/projects", "projects", newest_created(seed["hv_projects"])),
        ("/users", "users", newest_created(seed["hv_users"])),
        ("/tasks", "tasks", newest_created(seed["hv_tasks"])),
        ("/user_assignments", "user_assignments", newest_created(seed["hv_user_assignments"])),
        ("/task_assignments", "task_assignments", newest_created(seed["hv_task_assignments"])),
        ("/projects/403/user_assignments", "user_assignments",
         newest_created(in_project("hv_user_assignments", 403))),
        ("/projects/403/task_assignments", "task_assignments",
         newest_created(in_project("hv_task_assignments", 403))),
        ("/time_entries", "time_entries", newest_spent(seed["hv_time_entries"])),
        ("/expenses", "expenses", newest_spent(seed["hv_expenses"])),
        ("/expense_categories", "expense_categories", newest_created(seed["hv_expense_categories"])),
    ]


# --- pagination ---------------------------------------------------------------------------------

@pytest.mark.parametrize("per_page", [7, 2000])
def test_links_next_walks_every_record_once_in_order(api: Harvest, world: Any, per_page: int) -> None:
    for path, plural, expected in endpoints(world[1]):
        records, pages = api.walk(path, plural, per_page=per_page)
        assert [r["id"] for r in records] == expected, path
        assert len(pages) == max(1, -(-len(expected) // per_page)), path
        for envelope in pages:
            assert envelope["total_entries"] == len(expected)
            assert envelope["per_page"] == per_page
            assert envelope["total_pages"] == len(pages)
        next_links = [p["links"]["next"] for p in pages[:-1]]
        assert all("cursor=" in link and "ref=next_cursor" in link for link in next_links)


def test_page_numbers_walk_every_record_once(api: Harvest, world: Any) -> None:
    for path, plural, expected in endpoints(world[1]):
        per_page = 7
        first = api.ok(path, per_page=per_page)
        ids = []
        for page in range(1, first["total_pages"] + 1):
            body = api.ok(path, per_page=per_page, page=page)
            assert (body["page"], body["previous_page"]) == (page, page - 1 if page > 1 else None)
            assert body["next_page"] == (page + 1 if page < first["total_pages"] else None)
            ids += [r["id"] for r in body[plural]]
        assert ids == expected, path
        beyond = api.ok(path, per_page=per_page, page=first["total_pages"] + 1)
        assert beyond[plural] == [] and beyond["links"]["next"] is None


def test_cursor_envelope_matches_harvest(api: Harvest, world: Any) -> None:
    """Cursor pages null their page numbers except the first and last; links.previous walks back."""
    _, pages = api.walk("/time_entries", "time_entries", per_page=1000)
    assert [(p["page"], p["next_page"], p["previous_page"]) for p in pages] == [
        (1, 2, None), (None, None, None), (None, None, None), (None, None, None), (5, None, 4)]
    first = pages[0]["links"]
    assert first["previous"] is None
    assert first["first"].endswith("/harvest/v2/time_entries?page=1&per_page=1000&ref=first")
    assert first["last"].endswith("/harvest/v2/time_entries?page=5&per_page=1000&ref=last")
    expected = newest_spent(world[1]["hv_time_entries"])
    previous = pages[3]["links"]["previous"]
    assert "ref=previous_cursor" in previous
    back = api.ok(previous)
    assert [r["id"] for r in back["time_entries"]] == expected[2000:3000]
    page_two = api.ok(pages[1]["links"]["previous"])
    assert [r["id"] for r in page_two["time_entries"]] == expected[:1000]
    assert (page_two["page"], page_two["previous_page"], page_two["links"]["previous"]) == (1, None, None)


def test_empty_list_envelope(api: Harvest) -> None:
    body = api.ok("/time_entries", user_id=999)
    assert body["time_entries"] == [] and body["total_entries"] == 0
    assert (body["page"], body["total_pages"], body["next_page"], body["previous_page"]) == (1, 1, None, None)
    assert body["links"]["next"] is None and body["links"]["previous"] is None


# --- filters ------------------------------------------------------------------------------------

SINCE = NOW - 30 * DAY


FILTERS: list[tuple[str, str, dict[str, Any], Any]] = [
    ("/time_entries", "hv_time_entries", {"user_id": 203}, lambda r: r["user_id"] == 203),
    ("/time_entries", "hv_time_entries", {"client_id": 102}, lambda r: r["client_id"] == 102),
    ("/time_entries", "hv_time_entries", {"project_id": 404}, lambda r: r["project_id"] == 404),
    ("/time_entries", "hv_time_entries", {"task_id": 302}, lambda r: r["task_id"] == 302),
    ("/time_entries", "hv_time_entries", {"is_billed": "true"}, lambda r: r["is_billed"]),
    ("/time_entries", "hv_time_entries", {"is_billed": "false"}, lambda r: not r["is_billed"]),
    ("/time_entries", "hv_time_entries", {"is_running": "false"}, lambda r: True),
    ("/time_entries", "hv_time_entries", {"is_running": "true"}, lambda r: False),
    ("/time_entries", "hv_time_entries", {"from": "2026-09-10", "to": "2026-09-20"},
     lambda r: "2026-09-10" <= r["spent_date"] <= "2026-09-20"),
    ("/time_entries", "hv_time_entries", {"updated_since": _iso(SINCE)}, lambda r: r["updated_at"] >= SINCE),
    ("/time_entries", "hv_time_entries",
     {"updated_since": _iso(SINCE), "project_id": 401, "is_billed": "false", "from": "2026-09-15"},
     lambda r: r["updated_at"] >= SINCE and r["project_id"] == 401 and not r["is_billed"]
     and r["spent_date"] >= "2026-09-15"),
    ("/expenses", "hv_expenses", {"user_id": 204}, lambda r: r["user_id"] == 204),
    ("/expenses", "hv_expenses", {"client_id": 103, "is_billed": "false"},
     lambda r: r["client_id"] == 103 and not r["is_billed"]),
    ("/expenses", "hv_expenses", {"project_id": 402, "to": "2026-10-01"},
     lambda r: r["project_id"] == 402 and r["spent_date"] <= "2026-10-01"),
    ("/expenses", "hv_expenses", {"updated_since": _iso(SINCE)}, lambda r: r["updated_at"] >= SINCE),
    ("/clients", "hv_clients", {"is_active": "false"}, lambda r: not r["is_active"]),
    ("/clients", "hv_clients", {"updated_since": _iso(NOW - 400 * DAY + DAY)},
     lambda r: r["updated_at"] >= NOW - 399 * DAY),
    ("/projects", "hv_projects", {"is_active": "true", "client_id": 101},
     lambda r: r["is_active"] and r["client_id"] == 101),
    ("/users", "hv_users", {"is_active": "true"}, lambda r: r["is_active"]),
    ("/tasks", "hv_tasks", {"is_active": "false"}, lambda r: not r["is_active"]),
    ("/user_assignments", "hv_user_assignments", {"user_id": 202}, lambda r: r["user_id"] == 202),
    ("/expense_categories", "hv_expense_categories", {"is_active": "true"}, lambda r: r["is_active"]),
]


@pytest.mark.parametrize("strategy", ["sort", "walk"])
@pytest.mark.parametrize("path,table,params,keep", FILTERS,
                         ids=[f"{f[0]}?{'&'.join(map(str, f[2].items()))}" for f in FILTERS])
def test_filters_return_exactly_the_matching_records(
        api: Harvest, world: Any, monkeypatch: pytest.MonkeyPatch, strategy: str, path: str,
        table: str, params: dict[str, Any], keep: Any) -> None:
    """Both ways of picking a page (sort the matches / walk the sort index) give the same list."""
    if strategy == "walk":
        monkeypatch.setattr(harvest_api, "SORT_MATCHES_UP_TO", -1)
    rows = [r for r in world[1][table] if keep(r)]
    order = newest_spent if "spent_date" in world[1][table][0] else newest_created
    plural = path.rsplit("/", 1)[-1]
    records, pages = api.walk(path, plural, per_page=50, **params)
    assert [r["id"] for r in records] == order(rows)
    for envelope in pages[:-1]:
        query = parse_qs(urlsplit(envelope["links"]["next"]).query)
        assert {k: query[k] for k in params} == {k: [str(v)] for k, v in params.items()}


# --- object shapes ------------------------------------------------------------------------------

SCHEMA_TYPES = {"integer": int, "number": (int, float), "string": str, "boolean": bool,
                "object": dict, "array": list}
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def assert_matches_schema(obj: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    """Every property the OpenAPI schema lists is present with the documented type (or null)."""
    missing = set(schema["properties"]) - set(obj)
    assert not missing, f"{where} lacks {sorted(missing)}"
    for name, prop in schema["properties"].items():
        value = obj[name]
        if value is None:
            continue
        kind = prop.get("type", "object")  # anyOf [$ref, null] embeds an object
        assert isinstance(value, SCHEMA_TYPES[kind]), f"{where}.{name}={value!r} is not {kind}"
        assert not (kind in {"integer", "number"} and isinstance(value, bool)), f"{where}.{name}"
        if prop.get("format") == "date-time":
            assert ISO_Z.match(value), f"{where}.{name}={value!r}"
        if prop.get("format") == "date":
            assert DATE.match(value), f"{where}.{name}={value!r}"
        if kind == "object" and "properties" in prop:
            nested_missing = set(prop["properties"]) - set(value) - {"service", "service_icon_url"}
            assert not nested_missing, f"{where}.{name} lacks {sorted(nested_missing)}"


@pytest.mark.parametrize("path,schema", [
    ("/time_entries", "TimeEntry"), ("/projects", "Project"), ("/clients", "Client"),
    ("/users", "User"), ("/tasks", "Task"), ("/expenses", "Expense"),
    ("/expense_categories", "ExpenseCategory"), ("/user_assignments", "UserAssignment"),
    ("/task_assignments", "TaskAssignment"),
])
def test_objects_carry_every_openapi_field(api: Harvest, path: str, schema: str) -> None:
    schemas = json.loads(SPEC.read_text())["components"]["schemas"]
    plural = path.strip("/")
    objects = api.ok(path, per_page=40)[plural]
    for obj in objects:
        assert_matches_schema(obj, schemas[schema], f"{plural}[{obj['id']}]")
    single = api.get(f"/{plural}/{objects[0]['id']}") if plural not in {
        "user_assignments", "task_assignments"} else api.get(
        f"/projects/{objects[0]['project']['id']}/{plural}/{objects[0]['id']}")
    assert single.status_code == 200 and single.json() == objects[0]


def test_time_entry_embeds_its_related_records(api: Harvest, world: Any) -> None:
    seed = world[1]
    row = next(r for r in seed["hv_time_entries"] if r["is_billed"])
    entry = api.ok(f"/time_entries/{row['id']}")
    user, client = seed.by_id("hv_users")[row["user_id"]], seed.by_id("hv_clients")[row["client_id"]]
    project, task = seed.by_id("hv_projects")[row["project_id"]], seed.by_id("hv_tasks")[row["task_id"]]
    assert entry["user"] == {"id": user["id"], "name": f"{user['first_name']} {user['last_name']}"}
    assert entry["client"] == {"id": client["id"], "name": client["name"], "currency": client["currency"]}
    assert entry["project"] == {"id": project["id"], "name": project["name"], "code": project["code"]}
    assert entry["task"] == {"id": task["id"], "name": task["name"]}
    assert entry["user_assignment"]["id"] == row["user_assignment_id"]
    assert entry["task_assignment"]["id"] == row["task_assignment_id"]
    assert isinstance(entry["task_assignment"]["billable"], bool)
    assert (entry["is_billed"], entry["is_closed"], entry["is_locked"]) == (True, True, True)
    assert entry["locked_reason"] == row["locked_reason"]
    assert entry["hours"] == entry["hours_without_timer"] == entry["rounded_hours"] == row["hours"]
    assert (entry["invoice"], entry["external_reference"], entry["is_running"]) == (None, None, False)
    assert (entry["timer_started_at"], entry["started_time"], entry["ended_time"]) == (None, None, None)
    assert entry["updated_at"] == _iso(row["updated_at"]) and entry["created_at"] == _iso(row["created_at"])
    me = api.ok("/users/me")
    assert me["id"] == 201 and me["access_roles"] == ["administrator"] and me["roles"] == ["Partner"]
    company = api.ok("/company")
    assert company["wants_timestamp_timers"] is False and company["invoice_feature"] is False


# --- writes -------------------------------------------------------------------------------------

def advance_clock(data_dir: Path, seconds: int) -> None:
    con = store.connect(data_dir)
    store.set_meta(con, "now_ms", store.Clock(con).now_ms + seconds * 1000)
    con.close()


def test_create_update_delete_time_entries(empty_state: Path, serve: Any) -> None:
    seed = seed_harvest(empty_state, time_entries=60, expenses=5)
    api = Harvest(start(serve, empty_state))
    ua = next(u for u in seed["hv_user_assignments"] if u["user_id"] == 201)
    project = seed.by_id("hv_projects")[ua["project_id"]]

    created = api.request("POST", "/time_entries", json={
        "project_id": project["id"], "task_id": 301, "spent_date": "2026-10-30", "hours": 1.5,
        "notes": "Kick-off"})
    assert created.status_code == 201, created.text
    first = created.json()
    assert first["id"] == 9_000_000_000 and first["user"]["id"] == 201
    assert first["client"]["id"] == project["client_id"] and first["hours"] == 1.5
    assert first["created_at"] == first["updated_at"] == _iso(NOW)
    assignment = next(t for t in seed["hv_task_assignments"]
                      if t["project_id"] == project["id"] and t["task_id"] == 301)
    rate = {"Project": project["hourly_rate"], "Tasks": assignment["hourly_rate"],
            "People": seed.by_id("hv_users")[201]["default_hourly_rate"] if ua["use_default_rates"]
            else ua["hourly_rate"]}.get(project["bill_by"])
    assert first["billable"] is bool(project["is_billable"])
    assert first["billable_rate"] == (rate if project["is_billable"] else None)
    assert first["cost_rate"] == seed.by_id("hv_users")[201]["cost_rate"]
    assert first["is_locked"] is False and first["is_billed"] is False
    assert api.ok(f"/time_entries/{first['id']}") == first

    advance_clock(empty_state, 60)
    other = next(u for u in seed["hv_user_assignments"] if u["user_id"] == 204)
    form = api.request("POST", "/time_entries", data={
        "user_id": "204", "project_id": str(other["project_id"]), "task_id": "302",
        "spent_date": "2026-10-31", "hours": "2"})
    assert form.status_code == 201, form.text
    second = form.json()
    assert second["id"] == first["id"] + 1 and second["user"]["id"] == 204
    assert second["updated_at"] == _iso(NOW + 60)

    advance_clock(empty_state, 60)
    patched = api.request("PATCH", f"/time_entries/{first['id']}", json={"hours": 3, "notes": "Longer"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["hours"], patched.json()["notes"]) == (3.0, "Longer")
    assert patched.json()["updated_at"] == _iso(NOW + 120)
    assert patched.json()["created_at"] == first["created_at"]

    def changed_since(epoch: int) -> list[int]:
        return [r["id"] for r in api.ok("/time_entries", updated_since=_iso(epoch))["time_entries"]]
    assert changed_since(NOW) == [second["id"], first["id"]]  # spent_date order, newest first
    assert changed_since(NOW + 60) == [second["id"], first["id"]]
    assert changed_since(NOW + 120) == [first["id"]]
    assert changed_since(NOW + 121) == []

    unchanged = api.request("PATCH", f"/time_entries/{first['id']}", json={"notes": "Longer"})
    assert unchanged.json()["updated_at"] == _iso(NOW + 120)

    moved_to = next(u for u in seed["hv_user_assignments"]
                    if u["user_id"] == 201 and u["project_id"] != project["id"])
    moved = api.request("PATCH", f"/time_entries/{first['id']}",
                        json={"project_id": moved_to["project_id"], "task_id": 303})
    assert moved.status_code == 200, moved.text
    assert moved.json()["project"]["id"] == moved_to["project_id"]
    assert moved.json()["client"]["id"] == seed.by_id("hv_projects")[moved_to["project_id"]]["client_id"]

    deleted = api.request("DELETE", f"/time_entries/{second['id']}")
    assert deleted.status_code == 200
    assert api.get(f"/time_entries/{second['id']}").status_code == 404
    assert api.request("PATCH", "/time_entries/123", json={"hours": 1}).status_code == 404


def test_cursor_walk_is_exact_while_entries_are_written(empty_state: Path, serve: Any) -> None:
    """Entries created mid-walk sort ahead of the cursor (newest spent_date): a keyset walk
    still returns every original entry exactly once, where offset paging would shift."""
    seed = seed_harvest(empty_state, time_entries=400, expenses=5)
    api = Harvest(start(serve, empty_state))
    ua = next(u for u in seed["hv_user_assignments"] if u["user_id"] == 201)
    body = api.ok("/time_entries", per_page=25)
    ids = [r["id"] for r in body["time_entries"]]
    while body["links"]["next"]:
        created = api.request("POST", "/time_entries", json={
            "project_id": ua["project_id"], "task_id": 301, "spent_date": "2026-10-31", "hours": 1})
        assert created.status_code == 201
        body = api.ok(body["links"]["next"])
        ids += [r["id"] for r in body["time_entries"]]
    assert ids == newest_spent(seed["hv_time_entries"])
    assert body["total_entries"] == 400 + 15 and body["page"] == 17


def test_locked_entries_refuse_edits(empty_state: Path, serve: Any) -> None:
    seed = seed_harvest(empty_state, time_entries=60, expenses=5)
    api = Harvest(start(serve, empty_state))
    for flag in ("is_billed", "is_closed"):
        row = next(r for r in seed["hv_time_entries"] if r[flag])
        before = api.ok(f"/time_entries/{row['id']}")
        for method, body in (("PATCH", {"hours": 9}), ("PATCH", {"notes": "x"}), ("DELETE", None)):
            refused = api.request(method, f"/time_entries/{row['id']}", json=body)
            assert refused.status_code == 422
            assert "can't be edited" in refused.json()["message"]
        assert api.ok(f"/time_entries/{row['id']}") == before


@pytest.mark.parametrize("body,message", [
    ({"task_id": 301, "spent_date": "2026-10-01", "hours": 1}, "Project can't be blank"),
    ({"project_id": 401, "spent_date": "2026-10-01"}, "Task can't be blank"),
    ({"project_id": 401, "task_id": 399, "spent_date": "2026-10-01"}, "Task must exist"),
    ({"project_id": 401, "task_id": 301, "spent_date": "2026-02-30"}, "Spent date is not a valid date"),
    ({"project_id": 401, "task_id": 301}, "Spent date can't be blank"),
    ({"project_id": 401, "task_id": 301, "spent_date": "2026-10-01", "hours": "lots"}, "Hours is not a number"),
    ({"project_id": 401, "task_id": 301, "spent_date": "2026-10-01", "user_id": 999}, "User must exist"),
])
def test_invalid_time_entries_are_422(api: Harvest, body: dict[str, Any], message: str) -> None:
    response = api.request("POST", "/time_entries", json=body)
    assert response.status_code == 422
    assert message in response.json()["message"]


# --- errors and limits --------------------------------------------------------------------------

def test_authentication_and_error_bodies(api: Harvest) -> None:
    bare = requests.Session()
    url = api.base + "/clients"
    headers = {"Authorization": f"Bearer {api.token}", "Harvest-Account-Id": api.account,
               "User-Agent": USER_AGENT}
    for broken in ({"Authorization": "Bearer nope"}, {"Harvest-Account-Id": "1"},
                   {"Authorization": None}, {"Harvest-Account-Id": None}):
        response = bare.get(url, headers={**headers, **broken})
        assert (response.status_code, response.json()) == (401, INVALID_TOKEN)
        assert api.token not in response.text
    by_query = bare.get(url, params={"access_token": api.token, "account_id": api.account},
                        headers={"User-Agent": USER_AGENT})
    assert by_query.status_code == 200 and api.token not in by_query.text
    host, port = urlsplit(api.base).netloc.split(":")
    raw = http.client.HTTPConnection(host, int(port), timeout=10)  # requests always sends one
    raw.request("GET", "/harvest/v2/clients", headers={k: v for k, v in headers.items()
                                                       if k != "User-Agent"})
    no_agent = raw.getresponse()
    assert no_agent.status == 400
    assert "User-Agent" in json.loads(no_agent.read())["message"]
    raw.close()

    for path in ("/clients/424242", "/clients/abc", "/nothing_here", "/projects/999/user_assignments"):
        response = api.get(path)
        assert (response.status_code, response.json()) == (404, {"status": 404, "error": "Not Found"})
    assert api.request("DELETE", "/clients").status_code == 405

    for params in ({"per_page": 2001}, {"per_page": 0}, {"per_page": "ten"}, {"from": "2026-13-01"},
                   {"to": "yesterday"}, {"updated_since": "last week"}, {"user_id": "abc"},
                   {"is_billed": "maybe"}, {"cursor": "not-a-cursor"}, {"page": "-1"}):
        response = api.get("/time_entries", **params)
        assert response.status_code == 422, params
        assert set(response.json()) == {"message"} and api.token not in response.text


def test_rate_limit_answers_429_with_retry_after(world: Any, serve: Any) -> None:
    server = start(serve, world[0])
    api = Harvest(server)
    server.settings.faults = FaultSettings(storm_rate=1.0, storm_length=1, retry_after=0)
    storm = api.get("/company")
    assert (storm.status_code, storm.headers["Retry-After"]) == (429, "0")
    assert storm.json() == {"status": 429, "error": "Too Many Requests"}
    server.settings.faults = FaultSettings(error_rate=1.0)
    failed = api.get("/company")
    assert failed.status_code in (500, 502, 503)
    assert failed.json() == {"status": failed.status_code, "error": failed.reason}
    server.settings.faults = FaultSettings()

    server.settings.rate_limits = True
    statuses = [api.get("/company").status_code for _ in range(100)]
    assert statuses == [200] * 100
    limited = api.get("/company")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 15
    assert limited.json() == {"status": 429, "error": "Too Many Requests"}


def test_serving_rate(api: Harvest) -> None:
    """Records per second for full 2000-record time-entry pages (printed, not asserted)."""
    api.ok("/time_entries", per_page=2000)
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        response = api.get("/time_entries", per_page=2000)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        timings.append(elapsed)
    best, median = min(timings), sorted(timings)[2]
    print(f"\nharvest /v2/time_entries 2000-record page: best {best * 1000:.1f} ms "
          f"({2000 / best:,.0f} records/s), median {median * 1000:.1f} ms "
          f"({2000 / median:,.0f} records/s), {len(response.content) / 2000:.0f} bytes/record")
