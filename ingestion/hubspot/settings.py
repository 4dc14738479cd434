"""Constants of the HubSpot CRM v3 API as Concord reads it, and the schema contracts its records keep.

Limits are HubSpot's published ones (the sandbox enforces the same): lists page by ≤ 100,
search by ≤ 200 with at most 10,000 results per query, v4 association batch reads take ≤ 1,000
ids. Contracts are built from the portal's own property definitions, so a custom number or
date property is checked like a standard one.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ingestion.quarantine import Contract

SYSTEM = "hubspot"
CREDENTIALS_HINT = (
    "SOURCES__HUBSPOT__ACCESS_TOKEN (the HubSpot private app access token, with CRM object and "
    "schema read scopes) and that SOURCES__HUBSPOT__BASE_URL points at the portal's API"
)

OBJECT_TYPES = ("companies", "contacts", "deals")
# Object type -> the type whose associations land with it (as the `associations` child table).
ASSOCIATED = {"contacts": "companies", "deals": "companies"}
# The property search filters and sorts on; HubSpot documents `lastmodifieddate` for contacts.
MODIFIED_PROPERTY = {"companies": "hs_lastmodifieddate", "contacts": "lastmodifieddate",
                     "deals": "hs_lastmodifieddate"}
ID_PROPERTY = "hs_object_id"

LIST_LIMIT = 100
SEARCH_LIMIT = 200
ASSOCIATIONS_BATCH = 1_000
ASSOCIATIONS_PAGE = 500

# HubSpot's search index trails writes by a few seconds: each incremental search re-reads this
# much before the cursor, and what was already landed is recognised by (id, modification time).
SEARCH_LOOKBACK_MS = 5 * 60 * 1000

# v3 embedded association types (HUBSPOT_DEFINED) -> (v4 type id, v4 label).
V3_ASSOCIATION_TYPES: dict[str, tuple[int, str | None]] = {
    "contact_to_company": (1, "Primary"),
    "contact_to_company_unlabeled": (279, None),
    "deal_to_company": (5, "Primary"),
    "deal_to_company_unlabeled": (341, None),
}

# Columns every object table has; a property of the same name lands as `property_<name>`.
RECORD_COLUMNS: dict[str, dict[str, Any]] = {
    "id": {"data_type": "text"},
    "created_at": {"data_type": "timestamp"},
    "updated_at": {"data_type": "timestamp", "dedup_sort": "desc"},
    "archived": {"data_type": "bool"},
    "archived_at": {"data_type": "timestamp"},
}
RESERVED_NAMES = frozenset(RECORD_COLUMNS) | {"associations"}
ASSOCIATION_COLUMNS: dict[str, dict[str, Any]] = {
    "to_type": {"data_type": "text"},
    "to_id": {"data_type": "text"},
    "type_id": {"data_type": "bigint"},
    "label": {"data_type": "text"},
}

# Property definition type -> the contract check its values must pass (strings from the API).
VALUE_CHECKS = {"number": "number", "datetime": "datetime", "date": "date"}
CURRENCY_PROPERTIES = {"deals": ("deal_currency_code",)}

PROPERTIES_CONTRACT = Contract("properties", required={"object_type": "string", "name": "string"})


def record_contract(object_type: str, definitions: Iterable[Mapping[str, Any]]) -> Contract:
    """The contract of one object type's records, from its live property definitions.

    Args:
        object_type: `companies`, `contacts` or `deals`.
        definitions: the type's property definitions as `GET /crm/v3/properties/{type}` returns them.

    Returns:
        A contract requiring an id and parseable created/updated times, and checking every number,
        date and datetime property (and the deal currency) when a value is present.
    """
    optional: dict[str, str] = {"archivedAt": "datetime"}
    currencies = CURRENCY_PROPERTIES.get(object_type, ())
    for definition in definitions:
        name = definition.get("name")
        kind = "currency" if name in currencies else VALUE_CHECKS.get(definition.get("type", ""))
        if isinstance(name, str) and kind:
            optional[f"properties.{name}"] = kind
    return Contract(object_type, required={"id": "id", "createdAt": "datetime", "updatedAt": "datetime"},
                    optional=optional)
