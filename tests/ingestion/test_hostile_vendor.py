"""Vendors that answer wrongly on purpose, served on loopback: a next link to another host, a
cursor handed back twice, a Retry-After of `nan`, `inf` or a day. Every walk stops with an error
naming the system and the endpoint, no credential leaves for another host, and no wait is
unbounded."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest

from ingestion.harvest.helpers import walk
from ingestion.hubspot.helpers import list_objects
from ingestion.http import ApiClient, ApiRequestFailed, RetryPolicy
from ingestion.stripe.helpers import pages

Answer = Callable[[str, dict[str, str]], tuple[int, dict[str, str], Any]]


class Vendor:
    """A loopback server answering each request with `answer(path_and_query, headers)`, and
    remembering what it was asked, with which headers."""

    def __init__(self, answer: Answer):
        self.answer = answer
        self.asked: list[tuple[str, dict[str, str]]] = []
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = dict(self.headers.items())
                vendor.asked.append((self.path, headers))
                status, extra, body = vendor.answer(self.path, headers)
                payload = json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **extra}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vendors() -> Iterator[Callable[[Answer], Vendor]]:
    started: list[Vendor] = []

    def start(answer: Answer) -> Vendor:
        started.append(Vendor(answer))
        return started[-1]

    yield start
    for vendor in started:
        vendor.close()


def client(system: str, base_url: str, **policy: Any) -> tuple[ApiClient, list[float]]:
    waits: list[float] = []
    api = ApiClient(system=system, base_url=base_url, headers={"Authorization": "Bearer s3cret-token"},
                    credentials_hint="the token", policy=RetryPolicy(**policy), sleep=waits.append)
    return api, waits


def test_a_next_link_to_another_host_is_refused_before_any_credential_goes_there(vendors) -> None:
    elsewhere = vendors(lambda path, headers: (200, {}, {"time_entries": [], "links": {"next": None}}))
    harvest = vendors(lambda path, headers: (200, {}, {
        "time_entries": [{"id": 1}], "links": {"next": f"{elsewhere.url}/v2/time_entries?page=2"}}))
    api, _ = client("harvest", f"{harvest.url}/v2")
    with pytest.raises(ApiRequestFailed, match=r"^harvest: a response sent us to http://127\.0\.0\.1:\d+"):
        list(walk(api, "time_entries", {"per_page": 2000}))
    assert elsewhere.asked == []
    assert len(harvest.asked) == 1


def test_another_scheme_on_the_same_host_is_refused_too(vendors) -> None:
    harvest = vendors(lambda path, headers: (200, {}, {"time_entries": [{"id": 1}],
                                                       "links": {"next": "https://127.0.0.1/v2/time_entries?page=2"}}))
    api, _ = client("harvest", f"{harvest.url}/v2")
    with pytest.raises(ApiRequestFailed, match="refusing to send the credentials"):
        list(walk(api, "time_entries", {}))


def test_harvest_handing_back_the_same_next_link_stops_the_walk(vendors) -> None:
    harvest = vendors(lambda path, headers: (200, {}, {
        "time_entries": [{"id": 1}], "links": {"next": f"{harvest.url}/v2/time_entries?page=2"}}))
    api, _ = client("harvest", f"{harvest.url}/v2")
    with pytest.raises(ApiRequestFailed, match=r"harvest: GET /time_entries handed back a page cursor it already gave"):
        list(walk(api, "time_entries", {}))
    assert len(harvest.asked) == 2, "the first page, the second, then the repeat is refused unread"


def test_stripe_paging_that_never_moves_stops(vendors) -> None:
    stripe = vendors(lambda path, headers: (200, {}, {"object": "list", "has_more": True,
                                                      "data": [{"id": "cus_1"}, {"id": "cus_2"}]}))
    api, _ = client("stripe", stripe.url)
    with pytest.raises(ApiRequestFailed, match=r"stripe: GET /v1/customers handed back a page cursor"):
        list(pages(api, "/v1/customers"))
    assert len(stripe.asked) == 2


def test_hubspot_paging_that_repeats_its_after_stops(vendors) -> None:
    hubspot = vendors(lambda path, headers: (200, {}, {"results": [{"id": "1"}],
                                                       "paging": {"next": {"after": "1" if "after" not in path else "7"}}}))
    api, _ = client("hubspot", hubspot.url)
    with pytest.raises(ApiRequestFailed, match=r"hubspot: GET /crm/v3/objects/companies handed back a page cursor"):
        list(list_objects(api, "companies", ["name"]))
    assert len(hubspot.asked) == 3


@pytest.mark.parametrize("retry_after", ["nan", "inf", "-5", "86400", "soon"])
def test_retry_after_is_bounded_whatever_the_vendor_says(vendors, retry_after: str) -> None:
    calls = []

    def answer(path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        calls.append(path)
        if len(calls) <= 3:
            return 429, {"Retry-After": retry_after}, {"message": "slow down"}
        return 200, {}, {"tasks": []}

    vendor = vendors(answer)
    api, waits = client("harvest", vendor.url, min_rate_limit_wait_s=0.5, max_retry_after_s=60.0)
    assert api.get("/tasks") == {"tasks": []}
    assert len(waits) == 3
    assert all(0.5 <= w <= 60.0 * 1.1 for w in waits), waits
    if retry_after == "86400":
        assert min(waits) >= 60.0, "a long Retry-After is honoured up to the cap"

