"""Credentials the sandbox accepts, made fresh for each data dir.

They look like the vendors' own (a HubSpot private-app token, a Stripe test secret key, a
Harvest personal access token and account id) so connectors can validate their shape, and are
kept only in the data dir: never in the repo, never in logs.
"""

from __future__ import annotations

import secrets
import string
import uuid


def new_credentials() -> dict[str, dict[str, str]]:
    alphabet = string.ascii_letters + string.digits
    stripe_key = "sk_test_" + "".join(secrets.choice(alphabet) for _ in range(99))
    return {
        "hubspot": {"access_token": f"pat-na1-{uuid.uuid4()}"},
        "stripe": {"api_key": stripe_key},
        "harvest": {
            "access_token": f"{secrets.randbelow(9_000_000) + 1_000_000}.pt.{secrets.token_urlsafe(64)}",
            "account_id": str(secrets.randbelow(9_000_000) + 1_000_000),
        },
    }


def redact(secret: str) -> str:
    """How errors mention a secret: enough to recognise it, never enough to use it."""
    return f"{secret[:8]}****{secret[-4:]}" if len(secret) > 16 else "****"
