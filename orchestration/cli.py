"""The `concord` command."""

from __future__ import annotations

import click

from sandbox.cli import sandbox


@click.group()
def main() -> None:
    """Concord keeps a professional-services firm's CRM, ERP, PSA and billing in concord."""


main.add_command(sandbox)


@main.command()
@click.option("--data-dir", default="data/demo", show_default=True, help="Where the demo firm is generated.")
def demo(data_dir: str) -> None:
    """Generate the small firm, serve its systems, show them answering, and stop."""
    from orchestration.demo import run

    run(data_dir)
