"""The dbt project as Dagster assets: every model, seed and snapshot an asset, every dbt test an
asset check, every dbt source the `raw/<system>/<table>` asset dlt materialises — so lineage runs
unbroken from a sandbox table to a CRM sync model. One `dbt build` per run, holding the
warehouse's writer lock like every other writer.
"""

import os
import shutil
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dbt.cli.main import dbtRunner

from ingestion.warehouse import WriterLock, warehouse_path

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
DBT_EXECUTABLE = shutil.which("dbt", path=str(Path(os.sys.executable).parent)) or "dbt"

dbt_project = DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROJECT_DIR)


def _newest_source_mtime() -> float:
    paths = [PROJECT_DIR / "dbt_project.yml", PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "seeds", "snapshots", "tests"):
        paths += [p for p in (PROJECT_DIR / folder).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in paths)


def ensure_manifest() -> Path:
    """The manifest Dagster reads the project from, parsed again when any project file is newer.

    Parsing is in-process (`dbtRunner`), which spares the two seconds a `dbt` CLI start costs.
    """
    manifest = dbt_project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime():
        result = dbtRunner().invoke(["parse", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                                     "--quiet"])
        if not result.success:
            raise RuntimeError(f"dbt parse failed: {result.exception}")
    return manifest


class ConcordDbtTranslator(DagsterDbtTranslator):
    """dbt sources become the raw assets dlt lands; models are grouped by their folder
    (staging, intermediate, core, reconciliation, metrics, crm_sync)."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "source":
            return spec.replace_attributes(key=dg.AssetKey(["raw", props["source_name"], props["name"]]))
        return spec.replace_attributes(group_name=group_of(props["fqn"]))


def group_of(fqn: list[str]) -> str:
    """`concord.marts.core.customers` -> core; `concord.staging.hubspot.stg_...` -> staging."""
    folders = fqn[1:-1]
    if not folders:
        return "dbt"
    return folders[1] if folders[0] == "marts" and len(folders) > 1 else folders[0]


@dbt_assets(manifest=ensure_manifest(), project=dbt_project, dagster_dbt_translator=ConcordDbtTranslator(),
            pool="warehouse")
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Build the selected models, seeds and snapshots and run their tests, in one `dbt build`."""
    with WriterLock(warehouse_path()):
        yield from dbt.cli(["build"], context=context).stream()


DBT_RESOURCE = DbtCliResource(project_dir=dbt_project, profiles_dir=str(PROJECT_DIR), dbt_executable=DBT_EXECUTABLE)
