"""HubSpot writes as facts.

- Property updates (`PATCH` one record, `batch/update`): the properties written stay as written
  on every later projection of the record (`hubspot_overlay`); the ground truth reads them too
  (a deal amount or VAT number corrected through the API is no fault any more).
- Archives (`DELETE`): a record archived through the API stays archived, with the archive's
  time, however its simulated life moves on; the properties the simulation projects keep
  following the firm (the record is still read with `archived=true`).
- Restores (the web app's recycle bin): a record restored stays live unless the simulation
  archives it again later, whoever archived it before.
- Records created through the API (`POST`, `batch/create`) take ids from `API_ID_FLOOR`, above
  every id the simulation assigns; they and the associations made with them live in the API's
  state only: the projection never writes them (a company merged away hands its associations
  to the company it was merged into).
- Merges (`POST /merge`): the record merged away stays gone (the projection never writes it
  again, and associations the simulation makes to it go to the record it was merged into); the
  primary lists it in `hs_merged_object_ids` as a written property.
- Property and group definitions created or changed through the API are the API's: `advance`
  never installs definitions again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson


DEFINITIONS = ("property", "property_group")  # facts about the schema, not about records


def hubspot_overlay(facts: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, str | None]]:
    """(object type, id) -> the properties written through HubSpot's API, the latest value of
    each (None: cleared)."""
    overlay: dict[tuple[str, int], dict[str, str | None]] = {}
    for fact in facts:
        if fact["system"] == "hubspot" and fact["action"] == "update" and fact["object"] not in DEFINITIONS:
            overlay.setdefault((fact["object"], int(fact["id"])), {}).update(fact["properties"])
    return overlay


@dataclasses.dataclass
class HubSpotWrites:
    """What the API wrote on records the simulation projects: properties, archives, merges."""

    properties: dict[tuple[str, int], dict[str, str | None]]
    archived_ms: dict[tuple[str, int], int]  # epoch ms of the archive
    merged_into: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)
    restored_ms: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)  # epoch ms of the restore

    def kept(self, records: list[tuple]) -> list[tuple]:
        """Projected rows with the API's writes laid over them, less the records merged away."""
        return [self.patch(r) for r in records if (r[0], int(r[1])) not in self.merged_into]

    def link(self, links: list[tuple]) -> list[tuple]:
        """Association rows (from type, from id, to type, to id, ...) pointing at the record each
        merged-away end was merged into."""
        if not self.merged_into:
            return links
        return [(a, self.merged_into.get((a, int(i)), i), b, self.merged_into.get((b, int(j)), j), *rest)
                for a, i, b, j, *rest in links]

    def patch(self, record: tuple) -> tuple:
        """A projected `hs_objects` row (type, id, properties JSON, created, updated, archived,
        archived_at) with the API's writes laid over it."""
        key = (record[0], int(record[1]))
        written = self.properties.get(key)
        if written:
            props = orjson.loads(record[2])
            for name, value in written.items():
                if value is None:
                    props.pop(name, None)
                else:
                    props[name] = value
            record = (*record[:2], orjson.dumps(props).decode(), *record[3:])
        if key in self.archived_ms:
            record = (*record[:5], 1, self.archived_ms[key])
        restored = self.restored_ms.get(key)
        if restored is not None and record[5] and (record[6] or 0) <= restored:
            record = (*record[:4], max(record[4], restored), 0, None)
        return record


def hubspot_writes(facts: list[dict[str, Any]]) -> HubSpotWrites:
    archived: dict[tuple[str, int], int] = {}
    restored: dict[tuple[str, int], int] = {}
    for f in facts:  # in the order they were written: the last of an archive and a restore wins
        if f["system"] != "hubspot" or f["action"] not in ("archive", "restore"):
            continue
        key = (f["object"], int(f["id"]))
        if f["action"] == "archive":
            archived[key] = int(f["archived_at"])
            restored.pop(key, None)
        else:
            archived.pop(key, None)
            restored[key] = int(f["restored_at"])
    merged = {(f["object"], int(f["id"])): int(f["into"]) for f in facts
              if f["system"] == "hubspot" and f["action"] == "merge"}
    return HubSpotWrites(hubspot_overlay(facts), archived, merged, restored)
