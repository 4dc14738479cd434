"""Retry policies of the steps that talk to vendors: the `raw/*` loads and the `crm/*` pushes.

Each client already retries a single request (5xx, timeouts, 429) a few times within seconds
(`ingestion.http.ApiClient`, `reverse_etl.client`); a step fails only when a vendor stayed
down or unreachable past that. The step retry waits minutes instead, long enough for a restart
or a network blip to pass, and re-runs the whole step, which is safe: a load finishes any
interrupted package first and merges on primary keys, and a push diffs against what HubSpot
last confirmed, so nothing is loaded or sent twice.

What never retries, because waiting does not fix it: refused credentials, missing settings,
a push guard's refusal, bad sync-model keys. Those steps raise `dg.Failure(allow_retries=False)`
and fail at once, for the run-failure alert to report.

Dagster's EXPONENTIAL backoff waits `(2^n - 1) * delay` before retry n, and PLUS_MINUS jitter
moves each wait by up to `delay` either way, so steps failed together do not retry together.
"""

import dagster as dg

LOAD_RETRY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
"""A load: about 30 s, 90 s and 210 s after each failure, then the step fails."""

PUSH_RETRY = dg.RetryPolicy(max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
"""A push: about 1 min and 3 min after each failure. Fewer, longer waits than a load, because
HubSpot's limits are per 10 s window and per day, and a push that ran out of them has already
waited inside the client; records still pending are sent by the next scheduled push anyway."""
