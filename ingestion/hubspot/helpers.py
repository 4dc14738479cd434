"""Reading HubSpot: list paging, the forward search walk, association batches, and record shaping.

Nothing here keeps state between runs; `ingestion.hubspot` decides what to read from its cursors.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ingestion.http import ApiClient, Cursors, SourceError
from ingestion.hubspot import settings

logger = logging.getLogger("concord.ingestion")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MS = dt.timedelta(milliseconds=1)

Record = dict[str, Any]
Association = dict[str, Any]


def make_client(base_url: str, access_token: str) -> ApiClient:
    """An API client for the portal at `base_url`, authenticated with a private app token."""
    return ApiClient(settings.SYSTEM, base_url,
                     {"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
                     settings.CREDENTIALS_HINT)


def epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds of an ISO 8601 timestamp as HubSpot sends them; None if it does not parse."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return (parsed - _EPOCH) // _MS


def changed_ms(record: Mapping[str, Any]) -> int | None:
    """When a record last changed: its `updatedAt`, or its `archivedAt` if that is later."""
    stamps = [ms for ms in (epoch_ms(record.get("updatedAt")), epoch_ms(record.get("archivedAt")))
              if ms is not None]
    return max(stamps) if stamps else None


def property_definitions(client: ApiClient, object_type: str, *, archived: bool = False) -> list[Record]:
    """The property definitions of an object type (`GET /crm/v3/properties/{type}`)."""
    params = {"archived": "true"} if archived else None
    return list(client.get(f"/crm/v3/properties/{object_type}", params).get("results", []))


def list_objects(client: ApiClient, object_type: str, properties: Sequence[str], *,
                 associations: str | None = None, archived: bool = False) -> Iterator[list[Record]]:
    """Every record of a type, page by page (`GET /crm/v3/objects/{type}`, ascending id).

    Args:
        client: the portal's API client.
        object_type: `companies`, `contacts` or `deals`.
        properties: the property names to return (all the type defines, so none is missed).
        associations: an object type whose associations to embed in each record, if any.
        archived: list the archived records instead of the live ones.
    """
    params: dict[str, Any] = {"limit": settings.LIST_LIMIT, "properties": ",".join(properties)}
    if associations:
        params["associations"] = associations
    if archived:
        params["archived"] = "true"
    cursors = Cursors("hubspot", f"GET /crm/v3/objects/{object_type}")
    while True:
        page = client.get(f"/crm/v3/objects/{object_type}", params)
        yield list(page.get("results", []))
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return
        cursors.follow(after)
        params = {**params, "after": after}


def high_water_mark(client: ApiClient, object_type: str) -> int | None:
    """The newest modification time among a type's live records (one search, sorted descending)."""
    prop = settings.MODIFIED_PROPERTY[object_type]
    page = client.post(f"/crm/v3/objects/{object_type}/search", json={
        "sorts": [{"propertyName": prop, "direction": "DESCENDING"}], "properties": [prop], "limit": 1})
    results = page.get("results") or []
    return epoch_ms(results[0].get("updatedAt")) if results else None


def search_modified_since(client: ApiClient, object_type: str, since_ms: int,
                          properties: Sequence[str]) -> Iterator[list[Record]]:
    """Live records modified at or after `since_ms`, page by page, each version once, oldest first.

    The walk moves forward by timestamp: every query starts at offset 0 from the last modification
    time seen (ids already yielded at that instant are skipped), so no query pages towards
    HubSpot's 10,000-result cap and writes during the walk cannot shift it. When a whole page shares
    one timestamp, that instant is read by ascending id (keyset paging, no cap either) before the
    walk moves past it.

    Args:
        client: the portal's API client.
        object_type: `companies`, `contacts` or `deals`.
        since_ms: epoch milliseconds, inclusive.
        properties: the property names to return.
    """
    prop = settings.MODIFIED_PROPERTY[object_type]
    path = f"/crm/v3/objects/{object_type}/search"
    lower, seen_at_lower = since_ms, set()
    cursors = Cursors("hubspot", f"POST {path}")
    while True:
        cursors.follow((lower, frozenset(seen_at_lower)))
        page = client.post(path, json={
            "filterGroups": [{"filters": [{"propertyName": prop, "operator": "GTE", "value": str(lower)}]}],
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
            "properties": list(properties), "limit": settings.SEARCH_LIMIT})
        results = page.get("results") or []
        if lower == since_ms and not seen_at_lower:
            logger.info("hubspot: %s: %s records modified since %d", object_type, page.get("total"), since_ms)
        fresh = [r for r in results if not (_modified(r) == lower and r.get("id") in seen_at_lower)]
        if fresh:
            yield fresh
        if not page.get("paging") or not results:
            return
        last = _modified(results[-1])
        if last is None:
            raise SourceError(f"hubspot: a {object_type} search result has no parseable updatedAt "
                              f"({results[-1].get('updatedAt')!r}); cannot page by modification time")
        if last == lower:
            yield from _search_one_instant(client, object_type, lower, properties,
                                           {r.get("id") for r in results} | seen_at_lower)
            lower, seen_at_lower = lower + 1, set()
        else:
            lower, seen_at_lower = last, {r.get("id") for r in results if _modified(r) == last}


def _search_one_instant(client: ApiClient, object_type: str, instant_ms: int, properties: Sequence[str],
                        seen: set[Any]) -> Iterator[list[Record]]:
    """Every live record modified at exactly `instant_ms`, by ascending id, skipping `seen` ids."""
    prop = settings.MODIFIED_PROPERTY[object_type]
    after_id = None
    cursors = Cursors("hubspot", f"POST /crm/v3/objects/{object_type}/search at {instant_ms}")
    while True:
        filters = [{"propertyName": prop, "operator": "EQ", "value": str(instant_ms)}]
        if after_id is not None:
            filters.append({"propertyName": settings.ID_PROPERTY, "operator": "GT", "value": str(after_id)})
        page = client.post(f"/crm/v3/objects/{object_type}/search", json={
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": settings.ID_PROPERTY, "direction": "ASCENDING"}],
            "properties": list(properties), "limit": settings.SEARCH_LIMIT})
        results = page.get("results") or []
        fresh = [r for r in results if r.get("id") not in seen]
        if fresh:
            yield fresh
        if not page.get("paging") or not results:
            return
        after_id = results[-1].get("id")
        cursors.follow(after_id)


def _modified(record: Mapping[str, Any]) -> int | None:
    return epoch_ms(record.get("updatedAt"))


def embedded_associations(record: Mapping[str, Any], to_type: str) -> list[Association] | None:
    """A listed record's embedded v3 associations to `to_type` as rows, or None when they cannot be
    read from the record alone (more than one page, or a type the v3 names do not identify)."""
    block = (record.get("associations") or {}).get(to_type)
    if not block:
        return []
    if (block.get("paging") or {}).get("next"):
        return None
    rows = []
    for item in block.get("results") or []:
        known = settings.V3_ASSOCIATION_TYPES.get(str(item.get("type")))
        if known is None:
            return None
        rows.append({"to_type": to_type, "to_id": str(item.get("id")), "type_id": known[0], "label": known[1]})
    return rows


def read_associations(client: ApiClient, from_type: str, to_type: str,
                      ids: Iterable[str]) -> dict[str, list[Association]]:
    """Associations from each of `ids` to `to_type` (v4 batch read), one row per association type.

    Ids without associations map to an empty list, so landing them clears what they had before.
    """
    wanted = list(dict.fromkeys(str(i) for i in ids))
    found: dict[str, list[Association]] = {i: [] for i in wanted}
    for start in range(0, len(wanted), settings.ASSOCIATIONS_BATCH):
        batch = wanted[start:start + settings.ASSOCIATIONS_BATCH]
        page = client.post(f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                           json={"inputs": [{"id": i} for i in batch]})
        for result in page.get("results") or []:
            from_id = str((result.get("from") or {}).get("id"))
            found.setdefault(from_id, []).extend(_v4_rows(to_type, result.get("to") or []))
            after = ((result.get("paging") or {}).get("next") or {}).get("after")
            if after:
                found[from_id].extend(_more_associations(client, from_type, to_type, from_id, after))
    return found


def _more_associations(client: ApiClient, from_type: str, to_type: str, from_id: str,
                       after: str) -> Iterator[Association]:
    """The rest of one record's associations, past the first page of a batch read."""
    cursors = Cursors("hubspot", f"GET /crm/v4/objects/{from_type}/{from_id}/associations/{to_type}")
    while after:
        cursors.follow(after)
        page = client.get(f"/crm/v4/objects/{from_type}/{from_id}/associations/{to_type}",
                          {"limit": settings.ASSOCIATIONS_PAGE, "after": after})
        yield from _v4_rows(to_type, page.get("results") or [])
        after = ((page.get("paging") or {}).get("next") or {}).get("after")


def _v4_rows(to_type: str, targets: Iterable[Mapping[str, Any]]) -> Iterator[Association]:
    for target in targets:
        for kind in target.get("associationTypes") or []:
            yield {"to_type": to_type, "to_id": str(target.get("toObjectId")),
                   "type_id": kind.get("typeId"), "label": kind.get("label")}


def to_row(record: Mapping[str, Any], associations: list[Association] | None = None) -> Record:
    """The landed row of a record: its properties as top-level columns (values as sent) plus the
    record's id, times and archived flag, and its associations when the type carries them."""
    row: Record = {(f"property_{name}" if name in settings.RESERVED_NAMES else name): value
                   for name, value in (record.get("properties") or {}).items()}
    row["id"] = str(record.get("id"))
    row["created_at"] = record.get("createdAt")
    row["updated_at"] = record.get("updatedAt")
    row["archived"] = bool(record.get("archived", False))
    row["archived_at"] = record.get("archivedAt")
    if associations is not None:
        row["associations"] = associations
    return row


def without_blanks(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The record with blank property values removed: a cleared property is not a contract breach."""
    props = record.get("properties")
    if not isinstance(props, Mapping) or all(v != "" for v in props.values()):
        return record
    return {**record, "properties": {k: v for k, v in props.items() if v != ""}}
