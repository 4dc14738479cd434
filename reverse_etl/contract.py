"""The CRM contract reverse ETL writes, and how values travel. This module is the contract's one
definition; dbt_project/DECISIONLOG.md, "CRM sync", says how each value is computed.

Each object type has a sync model in `crm_sync` whose columns are exactly the properties it
writes, keyed by the HubSpot record id. Nothing outside these lists is ever written: the CRM
owns every other field. Values go as HubSpot takes them (DECISIONLOG.md, "CRM sync"): text;
dates `YYYY-MM-DD`; datetimes ISO 8601 UTC; booleans `true`/`false`; a null as `""`, which
clears the property. `financial_status_synced_at` is metadata: it changes on every dbt run, so
it is sent only with a record whose other values changed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

GROUP_NAME = "financial_status"
GROUP_LABEL = "Financial status"
SYNC_SCHEMA = "crm_sync"
FINANCIAL_STATUSES = ("good_standing", "overdue", "in_dispute", "collections")


@dataclass(frozen=True)
class PropertySpec:
    """One CRM property reverse ETL owns: its HubSpot definition and whether it is metadata."""

    name: str
    label: str
    type: str  # HubSpot property type: number, date, datetime, enumeration, bool, string
    field_type: str
    description: str
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    metadata: bool = False
    ticks: bool = False  # moves with the calendar alone (days overdue): no alarm for the change guard

    def definition(self) -> dict[str, Any]:
        """The body of `POST /crm/v3/properties/{type}` for this property."""
        body: dict[str, Any] = {
            "name": self.name, "label": self.label, "type": self.type, "fieldType": self.field_type,
            "groupName": GROUP_NAME, "description": self.description, "formField": False,
        }
        if self.options:
            body["options"] = [{"value": value, "label": label, "displayOrder": i, "hidden": False}
                               for i, (value, label) in enumerate(self.options)]
        return body


@dataclass(frozen=True)
class ObjectSpec:
    """A CRM object type reverse ETL updates, the sync model it reads and the properties it maps."""

    object_type: str
    model: str
    key: str
    properties: tuple[PropertySpec, ...]
    hubspot_type: str = ""  # the HubSpot object written, when it is not `object_type`

    @property
    def crm_type(self) -> str:
        return self.hubspot_type or self.object_type

    @property
    def relation(self) -> str:
        return f"{SYNC_SCHEMA}.{self.model}"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.properties)

    @property
    def metadata_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.properties if p.metadata)

    @property
    def ticking_names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.properties if p.ticks)


def _number(name: str, label: str, description: str) -> PropertySpec:
    return PropertySpec(name, label, "number", "number", description)


_CONCORD = "Written by Concord from billing and the ERP; do not edit (the next push overwrites it)."

COMPANIES = ObjectSpec(
    object_type="companies",
    model="sync_hubspot__companies",
    key="hubspot_company_id",
    properties=(
        _number("ar_balance", "AR balance", f"What the client owes now, tax included, in the billing currency. {_CONCORD}"),
        _number("ar_overdue_amount", "AR overdue amount", f"The part of the AR balance past due. {_CONCORD}"),
        PropertySpec("ar_oldest_overdue_days", "Oldest overdue (days)", "number", "number",
                     f"Days the oldest overdue invoice is past due; 0 when nothing is overdue. {_CONCORD}",
                     ticks=True),
        PropertySpec("last_invoice_date", "Last invoice date", "date", "date",
                     f"Issue date of the latest invoice. {_CONCORD}"),
        PropertySpec("last_payment_date", "Last payment date", "date", "date",
                     f"Date of the latest payment. {_CONCORD}"),
        _number("open_disputes_count", "Open disputes", f"Payment disputes still open. {_CONCORD}"),
        _number("unbilled_wip_amount", "Unbilled WIP", f"Approved billable time not yet invoiced. {_CONCORD}"),
        _number("lifetime_billed", "Lifetime billed", f"Everything ever invoiced, net of credit notes, before tax. {_CONCORD}"),
        PropertySpec("financial_status", "Financial status", "enumeration", "select",
                     f"Worst first: collections, in dispute, overdue, good standing. {_CONCORD}",
                     options=tuple((s, s.replace("_", " ").capitalize()) for s in FINANCIAL_STATUSES)),
        _number("open_data_issues_count", "Open data issues",
                f"Reconciliation exceptions open on the client: a figure may be in question. {_CONCORD}"),
        PropertySpec("financial_status_synced_at", "Financial status synced at", "datetime", "date",
                     f"When the figures above were computed. {_CONCORD}", metadata=True),
        PropertySpec("billing_currency", "Billing currency", "string", "text",
                     f"The currency of every amount in this group. {_CONCORD}"),
    ),
)

DEALS = ObjectSpec(
    object_type="deals",
    model="sync_hubspot__deals",
    key="hubspot_deal_id",
    properties=(
        _number("contract_value_erp", "Contract value (ERP)",
                f"Total of the deal's ERP contract, in the deal's currency. {_CONCORD}"),
        _number("billed_to_date", "Billed to date", f"Invoiced on the deal's contract so far. {_CONCORD}"),
        _number("remaining_to_bill", "Remaining to bill",
                f"Contract value less billed to date; negative when billed beyond it. {_CONCORD}"),
        PropertySpec("scope_mismatch", "Scope mismatch", "bool", "booleancheckbox",
                     f"The sold amount and the ERP contract disagree. {_CONCORD}",
                     options=(("true", "Yes"), ("false", "No"))),
    ),
)

TIMELINE_NOTES = ObjectSpec(
    object_type="timeline_notes",
    model="sync_hubspot__timeline_events",
    key="event_key",
    hubspot_type="notes",
    properties=(
        PropertySpec("concord_event_key", "Concord event key", "string", "text",
                     "The business event this note announces (event type and record); Concord writes "
                     "one note per key and looks notes up by it. Do not edit."),
    ),
)

OBJECTS: dict[str, ObjectSpec] = {spec.object_type: spec for spec in (COMPANIES, DEALS)}
PUSHABLE: dict[str, ObjectSpec] = {**OBJECTS, TIMELINE_NOTES.object_type: TIMELINE_NOTES}


def spec_for(object_type: str) -> ObjectSpec:
    try:
        return PUSHABLE[object_type]
    except KeyError:
        raise ValueError(f"unknown object type {object_type!r}; reverse ETL writes {', '.join(PUSHABLE)}") from None


def to_property_value(value: Any) -> str:
    """A sync-model value as HubSpot takes it. 0 stays "0"; a null is "" (clears the property)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
