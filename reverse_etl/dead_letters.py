"""The operator's view of records the CRM rejected: list them, requeue the parked ones.

A rejected record is a dead letter, `pending` while it has been rejected fewer than
`dead_letter_max_attempts` runs (every push sends it again with the model's current values),
then `parked`: pushes hold it back until an operator has fixed the cause (in the CRM or
upstream) and requeues it, which makes it `pending` with its attempts reset. A dead letter
disappears once the CRM accepts the record, or once the record no longer differs from what
the CRM last confirmed.
"""

from __future__ import annotations

from reverse_etl import state
from reverse_etl.settings import Settings
from reverse_etl.state import DeadLetter


def list_dead_letters(settings: Settings | None = None, *, object_type: str | None = None,
                      status: str | None = None) -> list[DeadLetter]:
    """Dead letters, optionally of one object type and/or status (`pending`, `parked`)."""
    settings = settings or Settings.from_env()
    with state.connect(settings.warehouse, lock_timeout_s=settings.lock_timeout_s) as con:
        return state.dead_letters(con, object_type, status)


def requeue(settings: Settings | None = None, *, object_type: str | None = None,
            record_ids: list[str] | None = None) -> int:
    """Make parked dead letters pending again (all, one object type's, or the given records);
    the next push sends them. Returns how many were requeued."""
    settings = settings or Settings.from_env()
    with state.connect(settings.warehouse, lock_timeout_s=settings.lock_timeout_s) as con:
        return state.requeue(con, object_type, [str(i) for i in record_ids] if record_ids else None)
