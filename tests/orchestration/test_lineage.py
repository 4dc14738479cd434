"""One connected lineage graph: from each raw table, through staging, to the CRM sync models."""

from __future__ import annotations

import dagster as dg

from orchestration.definitions import defs


def graph():
    return defs.resolve_asset_graph()


def test_every_root_is_a_raw_table_or_a_seed() -> None:
    g = graph()
    roots = {k.to_user_string() for k in g.get_all_asset_keys() if not g.get(k).parent_keys}
    assert roots and all(r.startswith(("raw/", "seeds/")) for r in roots), sorted(roots)


def test_every_raw_table_feeds_its_staging_model() -> None:
    g = graph()
    for key in g.get_all_asset_keys():
        if key.path[0] != "raw":
            continue
        children = {c.to_user_string() for c in g.get(key).child_keys}
        system = key.path[1]
        assert any(c.startswith(f"staging/stg_{system}__") for c in children), f"{key.to_user_string()} -> {children}"


def test_staging_reads_only_raw_tables() -> None:
    g = graph()
    for key in g.get_all_asset_keys():
        if key.path[0] == "staging":
            parents = {p.path[0] for p in g.get(key).parent_keys}
            assert parents == {"raw"}, f"{key.to_user_string()} reads {parents}"


def test_the_crm_sync_models_descend_from_every_system() -> None:
    g = graph()
    sync = [k for k in g.get_all_asset_keys() if k.path[0] == "crm_sync"]
    assert {k.path[-1] for k in sync} >= {"sync_hubspot__companies", "sync_hubspot__deals"}
    for key in sync:
        seen, stack = set(), [key]
        while stack:
            for parent in g.get(stack.pop()).parent_keys:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        systems = {k.path[1] for k in seen if k.path[0] == "raw"}
        assert systems == {"hubspot", "stripe", "harvest", "erp"}, f"{key.to_user_string()}: {systems}"


def test_dbt_tests_are_asset_checks() -> None:
    checks = list(defs.resolve_asset_graph().asset_check_keys)
    assert any(c.asset_key == dg.AssetKey(["core", "customers"]) for c in checks)
