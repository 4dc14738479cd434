"""What can stop a push, each with a message that says what to do."""

from __future__ import annotations

from typing import Any


class ReverseEtlError(RuntimeError):
    """Base of every reverse-ETL failure."""


class CredentialsRejected(ReverseEtlError):
    """HubSpot refused the token (401/403): nothing will succeed until an operator fixes it."""


class DailyLimitReached(ReverseEtlError):
    """HubSpot answered 429 with `policyName: DAILY`: stop cleanly, the rest stays pending."""


class CrmUnavailable(ReverseEtlError):
    """5xx, timeouts or rate limiting went on past the retry policy."""


class OutcomeUnknown(CrmUnavailable):
    """A create failed in a way (5xx, timeout) that leaves unknown whether HubSpot carried it out."""


class BatchRejected(ReverseEtlError):
    """HubSpot refused a whole batch with a 4xx (not 401/403/429)."""

    def __init__(self, status: int, category: str, message: str):
        super().__init__(f"HTTP {status} {category}: {message}")
        self.status = status
        self.category = category
        self.message = message


class SyncModelInvalid(ReverseEtlError):
    """The sync model has null or duplicate keys; found before any HTTP call."""


class PropertySetupError(ReverseEtlError):
    """A contract property exists in the CRM with a definition reverse ETL cannot write to."""


class GuardRefused(ReverseEtlError):
    """A safety guard refused the push; `confirm=True` (`--confirm`) overrides it."""

    def __init__(self, refusals: list[str], result: Any = None):
        super().__init__("push refused until an operator confirms (confirm=True / --confirm): "
                         + "; ".join(refusals))
        self.refusals = refusals
        self.result = result
