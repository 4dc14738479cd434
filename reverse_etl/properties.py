"""Property setup: the contract's properties exist in the CRM before a value is written to them.

Idempotent: the "Financial status" group and each missing property are created; an existing
property of the right type is left alone, except that an enumeration missing one of the
contract's options gets it added (never removed). A property of the wrong type is an operator's
decision (HubSpot will not convert values), so setup stops and says which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from reverse_etl.client import HubSpotClient
from reverse_etl.contract import GROUP_LABEL, GROUP_NAME, ObjectSpec
from reverse_etl.errors import PropertySetupError

logger = logging.getLogger("concord.reverse_etl")


@dataclass
class SetupReport:
    object_type: str
    group_created: bool = False
    created: list[str] = field(default_factory=list)
    options_added: list[str] = field(default_factory=list)


def ensure_properties(client: HubSpotClient, spec: ObjectSpec) -> SetupReport:
    """Create the group and properties of `spec` that the CRM lacks; two GETs when none is missing."""
    object_type = spec.crm_type
    report = SetupReport(object_type)
    status, body = client.get_json(f"/crm/v3/properties/{object_type}/groups/{GROUP_NAME}")
    if status == 404:
        status, body = client.send_json("POST", f"/crm/v3/properties/{object_type}/groups",
                                        {"name": GROUP_NAME, "label": GROUP_LABEL, "displayOrder": -1})
        if status not in (200, 201, 409):
            raise PropertySetupError(f"could not create the {GROUP_LABEL!r} group on {object_type}: {body}")
        report.group_created = status != 409
    elif status != 200:
        raise PropertySetupError(f"could not read the {GROUP_LABEL!r} group of {object_type}: {body}")

    status, body = client.get_json(f"/crm/v3/properties/{object_type}")
    if status != 200:
        raise PropertySetupError(f"could not list the {object_type} properties: {body}")
    existing = {p.get("name"): p for p in body.get("results", [])}
    wrong: list[str] = []
    for prop in spec.properties:
        have = existing.get(prop.name)
        if have is None:
            status, created = client.send_json("POST", f"/crm/v3/properties/{object_type}", prop.definition())
            if status not in (200, 201):
                raise PropertySetupError(f"could not create {object_type}.{prop.name}: {created}")
            report.created.append(prop.name)
            continue
        if have.get("type") != prop.type:
            wrong.append(f"{prop.name} is {have.get('type')!r}, the contract needs {prop.type!r}")
            continue
        values = {o.get("value") for o in have.get("options") or []}
        missing = [o for o in prop.definition().get("options", []) if o["value"] not in values]
        if missing:
            options = list(have.get("options") or []) + missing
            status, patched = client.send_json("PATCH", f"/crm/v3/properties/{object_type}/{prop.name}",
                                               {"options": options})
            if status != 200:
                raise PropertySetupError(f"could not add options to {object_type}.{prop.name}: {patched}")
            report.options_added.append(prop.name)
    if wrong:
        raise PropertySetupError(f"{object_type} properties with another definition in the CRM: "
                                 f"{'; '.join(wrong)}. Fix or rename them in HubSpot; reverse ETL will not "
                                 f"change a property's type.")
    if report.group_created or report.created or report.options_added:
        logger.info("hubspot %s: group created %s, properties created %s, options added %s", object_type,
                    report.group_created, report.created, report.options_added)
    return report
