"""The simulated firm's HubSpot CRM schema: property groups and property definitions.

Definitions are kept in HubSpot's own shape (as `GET /crm/v3/properties/{type}` returns them)
so the sandbox can serve them verbatim and validate writes against them. The data generator
calls `install` once per data dir, then writes records using exactly these property names.

Values are stored as strings, as HubSpot returns them: numbers as decimal text, booleans as
"true"/"false", datetimes as ISO 8601 UTC with milliseconds ("2026-03-04T10:11:12.345Z"),
dates as "YYYY-MM-DD". The read-only system properties in `SYSTEM_COLUMNS` are never stored
in `hs_objects.properties`; the API derives them from the row's columns.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

OBJECT_TYPES = ("companies", "contacts", "deals", "notes")

# Read-only properties derived from hs_objects columns rather than stored.
SYSTEM_COLUMNS: dict[str, dict[str, str]] = {
    "companies": {"hs_object_id": "id", "createdate": "created_at", "hs_lastmodifieddate": "updated_at"},
    "contacts": {
        "hs_object_id": "id",
        "createdate": "created_at",
        "lastmodifieddate": "updated_at",
        "hs_lastmodifieddate": "updated_at",
    },
    "deals": {"hs_object_id": "id", "createdate": "created_at", "hs_lastmodifieddate": "updated_at"},
    # Engagements name their creation date hs_createdate, as in HubSpot.
    "notes": {"hs_object_id": "id", "hs_createdate": "created_at", "hs_lastmodifieddate": "updated_at"},
}

# Properties returned when a read names none (HubSpot's documented defaults).
DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "contacts": ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"),
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage", "createdate",
              "hs_lastmodifieddate", "hs_object_id"),
    "notes": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}

# (object_type, name, label, displayOrder)
GROUPS: tuple[tuple[str, str, str, int], ...] = (
    ("companies", "companyinformation", "Company information", 0),
    ("contacts", "contactinformation", "Contact information", 0),
    ("deals", "dealinformation", "Deal information", 0),
    ("notes", "noteinformation", "Note information", 0),
)

LIFECYCLE_STAGES = (
    ("subscriber", "Subscriber"), ("lead", "Lead"), ("marketingqualifiedlead", "Marketing Qualified Lead"),
    ("salesqualifiedlead", "Sales Qualified Lead"), ("opportunity", "Opportunity"),
    ("customer", "Customer"), ("evangelist", "Evangelist"), ("other", "Other"),
)

# A subset of HubSpot's `industry` options, the sectors a services firm's clients come from.
INDUSTRIES = (
    ("ACCOUNTING", "Accounting"), ("AUTOMOTIVE", "Automotive"), ("BANKING", "Banking"),
    ("COMPUTER_SOFTWARE", "Computer Software"), ("CONSTRUCTION", "Construction"),
    ("CONSUMER_GOODS", "Consumer Goods"), ("EDUCATION_MANAGEMENT", "Education Management"),
    ("FINANCIAL_SERVICES", "Financial Services"), ("FOOD_BEVERAGES", "Food & Beverages"),
    ("GOVERNMENT_ADMINISTRATION", "Government Administration"),
    ("HOSPITAL_HEALTH_CARE", "Hospital & Health Care"), ("HOSPITALITY", "Hospitality"),
    ("INFORMATION_TECHNOLOGY_AND_SERVICES", "Information Technology and Services"),
    ("INSURANCE", "Insurance"), ("LEGAL_SERVICES", "Legal Services"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics and Supply Chain"),
    ("MANAGEMENT_CONSULTING", "Management Consulting"), ("MANUFACTURING", "Manufacturing"),
    ("MARKETING_AND_ADVERTISING", "Marketing and Advertising"), ("OIL_ENERGY", "Oil & Energy"),
    ("PHARMACEUTICALS", "Pharmaceuticals"), ("REAL_ESTATE", "Real Estate"), ("RETAIL", "Retail"),
    ("TELECOMMUNICATIONS", "Telecommunications"), ("UTILITIES", "Utilities"),
)

DEAL_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled"), ("qualifiedtobuy", "Qualified To Buy"),
    ("presentationscheduled", "Presentation Scheduled"),
    ("decisionmakerboughtin", "Decision Maker Bought-In"), ("contractsent", "Contract Sent"),
    ("closedwon", "Closed Won"), ("closedlost", "Closed Lost"),
)


def options(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> list[dict[str, Any]]:
    """HubSpot option objects from (value, label) pairs, in display order."""
    return [
        {"label": label, "value": value, "displayOrder": order, "hidden": False, "description": ""}
        for order, (value, label) in enumerate(pairs)
    ]


def _prop(name: str, label: str, type_: str, field_type: str, group: str, *,
          description: str = "", opts: list[dict[str, Any]] | None = None,
          hubspot_defined: bool = True, read_only: bool = False, calculated: bool = False,
          external_options: bool = False, unique: bool = False, order: int = -1,
          referenced_object_type: str | None = None) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": type_,
        "fieldType": field_type,
        "description": description,
        "groupName": group,
        "options": opts or [],
        "displayOrder": order,
        "calculated": calculated,
        "externalOptions": external_options,
        "hasUniqueValue": unique,
        "hidden": False,
        "hubspotDefined": hubspot_defined,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": read_only or calculated,
        },
        "formField": not (read_only or calculated),
    }
    if type_ == "enumeration":
        definition["modificationMetadata"]["readOnlyOptions"] = external_options
    if referenced_object_type:
        definition["referencedObjectType"] = referenced_object_type
    return definition


def _system(object_type: str, group: str) -> list[dict[str, Any]]:
    labels = {
        "hs_object_id": ("Record ID", "number", "number",
                         "The unique ID for this record. This value is set automatically by HubSpot."),
        "createdate": ("Create Date", "datetime", "date", "The date the record was created."),
        "hs_createdate": ("Create date", "datetime", "date", "The date the record was created."),
        "hs_lastmodifieddate": ("Last Modified Date", "datetime", "date",
                                "Most recent timestamp of any property update for this record."),
        "lastmodifieddate": ("Last Modified Date", "datetime", "date",
                             "Most recent timestamp of any property update for this contact."),
    }
    return [
        _prop(name, label, type_, field, group, description=description, read_only=True)
        for name, (label, type_, field, description) in
        ((n, labels[n]) for n in SYSTEM_COLUMNS[object_type])
    ]


def _owner(group: str) -> dict[str, Any]:
    return _prop("hubspot_owner_id", "Owner", "enumeration", "select", group,
                 description="The owner of the record.", external_options=True,
                 referenced_object_type="OWNER")


def _companies() -> list[dict[str, Any]]:
    g = "companyinformation"
    return [
        _prop("name", "Name", "string", "text", g, description="The name of the company or organization."),
        _prop("domain", "Company Domain Name", "string", "text", g,
              description="The domain name of the company or organization."),
        _prop("website", "Website URL", "string", "text", g, description="The main website of the company."),
        _prop("hs_merged_object_ids", "Merged Company IDs", "string", "text", g,
              description="The list of Company record IDs that have been merged into this Company."),
        _prop("hs_additional_domains", "Additional Domains", "string", "text", g,
              description="Additional domains belonging to this company, separated by semicolons."),
        _prop("phone", "Phone Number", "string", "phonenumber", g, description="The company's primary phone number."),
        _prop("city", "City", "string", "text", g, description="City where the company is located."),
        _prop("country", "Country/Region", "string", "text", g,
              description="Country or region in which the company is located."),
        _prop("industry", "Industry", "enumeration", "select", g,
              description="The type of business the company performs.", opts=options(INDUSTRIES)),
        _prop("numberofemployees", "Number of Employees", "number", "number", g,
              description="The total number of employees who work for the company."),
        _owner(g),
        _prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", g,
              description="The qualification of companies to sales readiness.", opts=options(LIFECYCLE_STAGES)),
        _prop("description", "Description", "string", "textarea", g,
              description="A short statement about the company's mission and goals."),
        _prop("erp_customer_ref", "ERP customer reference", "string", "text", g, hubspot_defined=False,
              description="The customer's reference (res_partner.ref) in the ERP."),
        _prop("vat_number", "VAT number", "string", "text", g, hubspot_defined=False,
              description="The customer's VAT / tax identification number."),
        *_system("companies", g),
    ]


def _contacts() -> list[dict[str, Any]]:
    g = "contactinformation"
    return [
        _prop("firstname", "First Name", "string", "text", g, description="A contact's first name."),
        _prop("lastname", "Last Name", "string", "text", g, description="A contact's last name."),
        _prop("email", "Email", "string", "text", g, description="A contact's email address."),
        _prop("phone", "Phone Number", "string", "phonenumber", g, description="A contact's primary phone number."),
        _prop("jobtitle", "Job Title", "string", "text", g, description="A contact's job title."),
        _prop("company", "Company Name", "string", "text", g,
              description="Name of the contact's company, as entered on the contact."),
        _prop("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", g,
              description="The qualification of contacts to sales readiness.", opts=options(LIFECYCLE_STAGES)),
        _owner(g),
        *_system("contacts", g),
    ]


def _deals() -> list[dict[str, Any]]:
    g = "dealinformation"
    return [
        _prop("dealname", "Deal Name", "string", "text", g, description="The name given to this deal."),
        _prop("amount", "Amount", "number", "number", g, description="The total amount of the deal."),
        _prop("dealstage", "Deal Stage", "enumeration", "radio", g,
              description="The stage of the deal in the default pipeline.", opts=options(DEAL_STAGES)),
        _prop("pipeline", "Pipeline", "enumeration", "select", g,
              description="The pipeline the deal is in.", opts=options((("default", "Sales Pipeline"),))),
        _prop("closedate", "Close Date", "datetime", "date", g,
              description="Date the deal was closed. Set automatically by HubSpot."),
        _prop("dealtype", "Deal Type", "enumeration", "radio", g,
              description="The type of deal.",
              opts=options((("newbusiness", "New Business"), ("existingbusiness", "Existing Business")))),
        _owner(g),
        _prop("deal_currency_code", "Currency", "enumeration", "select", g,
              description="Currency code for the deal.",
              opts=options((("USD", "US Dollar"), ("GBP", "British Pound"), ("EUR", "Euro")))),
        _prop("description", "Deal Description", "string", "textarea", g, description="Description of the deal."),
        _prop("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", g, calculated=True,
              description="True if the deal is in the closed won state.",
              opts=options((("true", "True"), ("false", "False")))),
        _prop("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", g, calculated=True,
              description="True if the deal is won or lost.",
              opts=options((("true", "True"), ("false", "False")))),
        _prop("engagement_type", "Engagement type", "enumeration", "select", g, hubspot_defined=False,
              description="How the engagement is billed.",
              opts=options((("time_and_materials", "Time and materials"), ("fixed_fee", "Fixed fee"),
                            ("retainer", "Retainer")))),
        *_system("deals", g),
    ]


def _notes() -> list[dict[str, Any]]:
    g = "noteinformation"
    return [
        _prop("hs_note_body", "Note body", "string", "html", g, description="The body of the note."),
        _prop("hs_timestamp", "Activity date", "datetime", "date", g,
              description="The date the note's activity happened."),
        _owner(g),
        *_system("notes", g),
    ]


PROPERTIES: dict[str, list[dict[str, Any]]] = {
    "companies": _companies(),
    "contacts": _contacts(),
    "deals": _deals(),
    "notes": _notes(),
}


def property_names(object_type: str, *, writable_only: bool = False) -> list[str]:
    """The property names defined for `object_type` (optionally only those writes may set)."""
    return [
        p["name"] for p in PROPERTIES[object_type]
        if not writable_only or not p["modificationMetadata"]["readOnlyValue"]
    ]


def install(con: sqlite3.Connection, stamp_ms: int) -> None:
    """Insert the firm's property groups and definitions, leaving existing ones untouched.

    Idempotent: safe to call on every generate/upgrade. Runs in the caller's transaction if
    one is open, else in its own.

    Args:
        con: an open sandbox state connection (`sandbox.store.connect`).
        stamp_ms: createdAt/updatedAt for the definitions, epoch milliseconds.
    """
    own_transaction = not con.in_transaction
    if own_transaction:
        con.execute("BEGIN IMMEDIATE")
    try:
        con.executemany(
            "INSERT OR IGNORE INTO hs_property_groups (object_type, name, label, display_order) "
            "VALUES (?, ?, ?, ?)",
            GROUPS,
        )
        con.executemany(
            "INSERT OR IGNORE INTO hs_properties (object_type, name, definition, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [
                (object_type, definition["name"], orjson.dumps(definition).decode(), stamp_ms, stamp_ms)
                for object_type, definitions in PROPERTIES.items()
                for definition in definitions
            ],
        )
    except BaseException:
        if own_transaction:
            con.execute("ROLLBACK")
        raise
    if own_transaction:
        con.execute("COMMIT")
