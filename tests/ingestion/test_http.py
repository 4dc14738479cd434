"""The API client against the sandbox's fault mode: how it waits, retries and gives up."""

from __future__ import annotations

import time

import pytest

from ingestion.http import ApiClient, ApiRequestFailed, CredentialsRejected, RetryPolicy


def harvest_client(sandbox, **policy) -> tuple[ApiClient, list[float]]:
    """A Harvest client on the running sandbox that records each wait instead of only sleeping it."""
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    s = sandbox.settings
    client = ApiClient(
        system="harvest", base_url=s["SOURCES__HARVEST__BASE_URL"],
        headers={"Authorization": f"Bearer {s['SOURCES__HARVEST__ACCESS_TOKEN']}",
                 "Harvest-Account-Id": s["SOURCES__HARVEST__ACCOUNT_ID"], "User-Agent": "Concord tests (t@x.y)"},
        credentials_hint="SOURCES__HARVEST__ACCESS_TOKEN", policy=RetryPolicy(**policy), sleep=sleep)
    return client, waits


def test_a_429_storm_with_retry_after_zero_is_waited_out_without_spinning(sandbox) -> None:
    faults = sandbox.server.settings.faults
    faults.storm_rate, faults.storm_length, faults.retry_after = 1.0, 4, 0
    client, waits = harvest_client(sandbox, min_rate_limit_wait_s=0.02, max_rate_limited=6, backoff_cap_s=1.0)
    with pytest.raises(ApiRequestFailed, match="still rate limited"):
        client.get("/tasks", params={"per_page": 10})  # a storm that never ends...
    assert len(waits) == 6
    assert all(w >= 0.02 for w in waits), "Retry-After: 0 must still wait"
    assert waits[5] > waits[0] * 8, "the floor grows while the server keeps refusing"


def test_a_429_storm_that_ends_is_waited_out(sandbox) -> None:
    faults = sandbox.server.settings.faults
    # Seed 1 draws 0.13 (a storm of three 429s starts) then 0.85 (calm) against a rate of 0.5.
    faults.storm_rate, faults.storm_length, faults.retry_after, faults.seed = 0.5, 3, 0, 1
    client, waits = harvest_client(sandbox, min_rate_limit_wait_s=0.02)
    body = client.get("/tasks", params={"per_page": 10})
    assert body["tasks"] and client.stats.rate_limited == len(waits) == 3


def test_rate_limits_honour_retry_after(sandbox) -> None:
    sandbox.server.settings.rate_limits = True
    client, waits = harvest_client(sandbox)
    for _ in range(101):  # Harvest allows 100 requests per 15 s
        client.get("/tasks", params={"per_page": 1})
    sandbox.server.settings.rate_limits = False
    assert client.stats.rate_limited == 1
    assert 1 <= waits[0] <= 15 * 1.1 + 1, "waits what Retry-After says (plus jitter): until the 15 s window frees a slot"


def test_server_errors_are_retried_a_bounded_number_of_times(sandbox) -> None:
    sandbox.server.settings.faults.error_rate = 1.0
    client, waits = harvest_client(sandbox, max_transient=3, backoff_base_s=0.01)
    sandbox.reset_requests()
    with pytest.raises(ApiRequestFailed, match="answered 5.. 4 times"):
        client.get("/clients")
    sandbox.server.settings.faults.error_rate = 0.0
    assert sum(sandbox.requests_made("harvest").values()) == 4
    assert len(waits) == 3 and waits[2] > waits[0], "backoff grows between attempts"


def test_timeouts_are_retried_then_reported(sandbox) -> None:
    faults = sandbox.server.settings.faults
    faults.slow_rate, faults.slow_ms = 1.0, 600
    client, waits = harvest_client(sandbox, max_transient=2, backoff_base_s=0.01, timeout=(2.0, 0.2))
    with pytest.raises(ApiRequestFailed, match="ReadTimeout"):
        client.get("/users")
    faults.slow_rate = 0.0
    assert len(waits) == 2
    assert client.get("/users")["users"], "once the server answers in time, so does the client"


def test_a_refused_token_stops_at_once(sandbox) -> None:
    client, waits = harvest_client(sandbox)
    client.session.headers["Authorization"] = "Bearer wrong"
    with pytest.raises(CredentialsRejected, match="harvest: the API refused our credentials .*SOURCES__HARVEST"):
        client.get("/users")
    assert waits == [] and client.stats.requests == 1
