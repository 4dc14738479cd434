"""HubSpot writes as facts: the properties a client wrote stay as written on every record the
simulation projects again."""

from __future__ import annotations

from typing import Any


def hubspot_overlay(facts: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, str | None]]:
    """(object type, id) -> the properties written through HubSpot's API, the latest value of
    each (None: cleared)."""
    overlay: dict[tuple[str, int], dict[str, str | None]] = {}
    for fact in facts:
        if fact["system"] == "hubspot" and fact["action"] == "update":
            overlay.setdefault((fact["object"], int(fact["id"])), {}).update(fact["properties"])
    return overlay
