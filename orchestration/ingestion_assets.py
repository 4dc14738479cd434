"""Ingestion as Dagster assets: one `@dlt_assets` multi-asset per system, keyed `raw/<system>/<table>`.

The asset body runs the load through `ingestion.warehouse.run_source` rather than
`DagsterDltResource.run`: before every run that resource drops the pipeline's pending load
packages (dagster-dlt 0.29 calls `pipeline.drop()`), which throws away a load a crash
interrupted. `run_source` finishes such a load first, holds the warehouse's writer lock and
reports quarantined records, which become materialisation metadata.

`@dlt_assets` is `@multi_asset` over `build_dlt_asset_specs` and passes no retry policy on, so the
multi-asset is declared here from the same specs, with `orchestration.retries.LOAD_RETRY`.
Refused credentials and missing settings fail the step without a retry: waiting fixes neither.
"""


from typing import Callable

import dagster as dg
from dagster_dlt import DagsterDltTranslator, build_dlt_asset_specs
from dagster_dlt.translator import DltResourceTranslatorData
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.extract.source import DltSource

import ingestion.erp
import ingestion.harvest
import ingestion.hubspot
import ingestion.stripe
from ingestion.http import CredentialsRejected
from ingestion.warehouse import make_pipeline, run_source
from orchestration.retries import LOAD_RETRY

# How each system's source is built when a load runs (settings resolve then), and the shape
# Dagster sees when it loads definitions, before any settings need to exist.
SOURCES: dict[str, tuple[Callable[[], DltSource], Callable[[], DltSource]]] = {
    "hubspot": (ingestion.hubspot.source, ingestion.hubspot.source),
    "stripe": (ingestion.stripe.source, ingestion.stripe.source),
    "harvest": (ingestion.harvest.source, ingestion.harvest.source),
    "erp": (ingestion.erp.source, lambda: ingestion.erp.source(credentials=ingestion.erp.PLACEHOLDER_CREDENTIALS)),
}


# Tables a resource lands beside its own (table -> resource): assets of their own, since a dbt
# source is one asset, materialised by loading that resource.
LANDED_BESIDE: dict[str, dict[str, str]] = {"harvest": ingestion.harvest.LANDED_BESIDE}


class RawTranslator(DagsterDltTranslator):
    """`raw/<system>/<table>`, grouped by system, described by the resource's docstring."""

    def __init__(self, system: str):
        self.system = system

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        resource = data.resource
        return super().get_asset_spec(data).replace_attributes(
            key=dg.AssetKey(["raw", self.system, resource.table_name or resource.name]),
            group_name=self.system,
            deps=[],
            kinds={"dlt", "duckdb"},
            description=f"{self.system} {resource.name} as the source holds it, landed in "
                        f"raw_{self.system}.{resource.name} by dlt "
                        f"({'merged on its primary key' if resource.write_disposition == 'merge' else 'replaced'}).",
        )


def raw_assets(system: str) -> dg.AssetsDefinition:
    build_source, template = SOURCES[system]
    translator = RawTranslator(system)

    beside = LANDED_BESIDE.get(system, {})
    specs = build_dlt_asset_specs(template(), make_pipeline(system), translator)
    specs += [dg.AssetSpec(key=dg.AssetKey(["raw", system, table]), group_name=system, kinds={"dlt", "duckdb"},
                           description=f"{system} {table}, landed in raw_{system}.{table} by dlt with {resource} "
                                       f"(replaced).") for table, resource in beside.items()]

    @dg.multi_asset(specs=specs, name=f"raw_{system}", can_subset=True, pool="warehouse", retry_policy=LOAD_RETRY)
    def assets(context: dg.AssetExecutionContext):
        tables = {key: key.path[-1] for key in context.selected_asset_keys}
        try:
            source = build_source().with_resources(*{beside.get(table, table) for table in tables.values()})
            report = run_source(source, system)
        except Exception as exc:
            permanent = _permanent(exc)
            if permanent is None:
                raise  # a vendor down or unreachable: LOAD_RETRY tries the load again
            raise dg.Failure(description=f"raw/{system}: {permanent}", allow_retries=False) from exc
        for key, table in tables.items():
            yield dg.MaterializeResult(asset_key=key, metadata={
                "rows_loaded": dg.MetadataValue.int(report.rows(table)),
                "quarantined": dg.MetadataValue.int(report.quarantined_by_table.get(table, 0)),
                "resumed_interrupted_load": report.resumed,
                "load_ids": ", ".join(report.load_ids),
                "seconds": dg.MetadataValue.float(round(report.seconds, 3)),  # the system's whole load
                "dagster/table_name": f"raw_{system}.{table}",
            })

    assets.__doc__ = f"Everything Concord reads from {system}."
    return assets


def _permanent(exc: BaseException) -> BaseException | None:
    """The refused credentials or missing setting behind a failed load (dlt wraps them), if any."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        if isinstance(seen, (CredentialsRejected, ConfigFieldMissingException)):
            return seen
        chain.append(seen)
        seen = getattr(seen, "exception", None) or seen.__cause__ or seen.__context__
    return None


INGESTION_ASSETS = [raw_assets(system) for system in SOURCES]
