"""The `concord` command."""

from __future__ import annotations

import click

from sandbox.cli import sandbox


@click.group()
def main() -> None:
    """Concord keeps a professional-services firm's CRM, ERP, PSA and billing in concord."""


main.add_command(sandbox)

# what `concord run` prints of each materialisation: a load's rows, a push's records
COUNTS = ("rows_loaded", "quarantined", "sent", "unchanged", "rejected", "pending", "parked")


@main.command()
@click.option("--select", "selection", default="*", show_default=True,
              help="Dagster asset selection, e.g. 'group:harvest' or 'key:raw/stripe/*'.")
@click.option("--log-level", default="WARNING", show_default=True, help="Dagster's own console log level.")
@click.option("--dbt-output/--no-dbt-output", default=False, show_default=True,
              help="Show dbt's event stream on the console instead of writing it beside the warehouse.")
def run(selection: str, log_level: str, dbt_output: bool) -> None:
    """Materialise the asset graph (all of it by default) in this process, through Dagster."""
    import logging

    from orchestration.runner import dbt_log_path, materialize

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("concord").setLevel(logging.INFO)
    log = None if dbt_output else dbt_log_path()
    result = materialize(selection, log_level, dbt_output=log)
    if log is not None and log.exists():
        click.echo(f"dbt output: {log}", err=True)
    events = result.get_asset_materialization_events()
    for event in events:
        metadata = event.materialization.metadata
        details = "  ".join(f"{name} {metadata[name].value:,}" for name in COUNTS if name in metadata)
        click.echo(f"  {event.asset_key.to_user_string():45} {details}")
    click.echo(f"{len(events)} assets materialised" + ("" if result.success else "; the run FAILED"))
    if not result.success:
        raise SystemExit(1)


@main.command()
@click.option("--data-dir", default="data/demo", show_default=True, help="Where the demo firm is generated.")
def demo(data_dir: str) -> None:
    """Generate the small firm, serve it, run the pipeline against it end to end, and stop."""
    from orchestration.demo import run

    run(data_dir)


@main.command()
@click.option("--data-dir", default="data/demo", show_default=True,
              help="The firm to serve: the demo's (generated here if missing).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the UI listens.")
@click.option("--port", default=3000, show_default=True, type=int, help="The UI's port.")
def ui(data_dir: str, host: str, port: int) -> None:
    """The Dagster UI (`dagster dev`) over the demo's firm and runs, with its sandbox served; Ctrl-C stops both."""
    from orchestration.ui import run

    run(data_dir, host, port)
