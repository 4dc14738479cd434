"""The saved Stripe 2023-08-16 schemas as JSON Schema validators, for checking served objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

SPECS = Path(__file__).resolve().parents[2] / "sandbox" / "vendor_specs" / "stripe"


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable` to JSON Schema; drop the `x-` vendor keys."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _openapi_to_jsonschema(value) for key, value in node.items()
           if not key.startswith("x-")}
    if out.pop("nullable", False) is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _validators() -> dict[str, jsonschema.Draft7Validator]:
    """One validator per saved resource; $refs to resources not saved accept an id or object."""
    components: dict[str, Any] = {}
    resources: list[str] = []
    not_inlined: set[str] = set()
    for path in sorted((SPECS / "schemas").glob("*.json")):
        spec = json.loads(path.read_text())
        components.update(spec["components"]["schemas"])
        components[spec["name"]] = spec["schema"]
        resources.append(spec["name"])
        not_inlined.update(spec["referenced_resources_not_inlined"])
    for name in not_inlined - components.keys():
        components[name] = {"anyOf": [{"type": "string"}, {"type": "object"}]}
    components = _openapi_to_jsonschema(components)
    return {name: jsonschema.Draft7Validator({"allOf": [{"$ref": f"#/components/schemas/{name}"}],
                                              "components": {"schemas": components}})
            for name in resources}


VALIDATORS = _validators()
EVENT_TYPES = set(json.loads((SPECS / "event_types.json").read_text())["event_types"])


def check_schema(doc: dict[str, Any]) -> None:
    """Validate a Stripe object (or a list of them) against the 2023-08-16 schema."""
    if doc.get("object") == "list":
        assert set(doc) == {"object", "data", "has_more", "url"}
        for item in doc["data"]:
            check_schema(item)
        return
    errors = sorted(VALIDATORS[doc["object"]].iter_errors(doc), key=str)
    assert not errors, f"{doc['object']} {doc.get('id')}: {errors[0].message} at {list(errors[0].path)}"
    if doc["object"] == "event":
        assert doc["type"] in EVENT_TYPES
        check_schema(doc["data"]["object"])
