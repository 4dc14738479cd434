"""`concord sandbox ...`: generate a simulated firm, serve its systems, move time forward."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from sandbox.world.config import DEFAULT_AS_OF, FAULT_TYPES, NOISE_KINDS, SCALES


def _rates(overall: float | None, per_type: tuple[str, ...], option: str = "--fault-rate-for") -> dict[str, float]:
    from sandbox.world.config import fault_rates, noise_rates

    overrides = {}
    for item in per_type:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KIND=RATE, got {item!r}", param_hint=option)
        try:
            overrides[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a number", param_hint=option) from None
    try:
        return (fault_rates if option == "--fault-rate-for" else noise_rates)(overall, **overrides)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.group()
def sandbox() -> None:
    """The simulated firm: its CRM, ERP, PSA and billing systems on your machine."""


@sandbox.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Where the firm's state is kept (created if missing, replaced if present).")
@click.option("--scale", type=click.Choice(list(SCALES)), default="small", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same firm.")
@click.option("--as-of", default=DEFAULT_AS_OF, show_default=True, help="Date the history runs up to.")
@click.option("--erp-url", default=None,
              help="SQLAlchemy URL of the ERP database (default: a SQLite file in the data dir). "
                   "A PostgreSQL database given here is emptied of the ERP tables first.")
@click.option("--fault-rate", type=float, default=None,
              help="Mean probability of an injected fault per eligible record (default: per-type defaults).")
@click.option("--fault-rate-for", multiple=True, metavar="TYPE=RATE",
              help=f"Rate of one fault type; repeatable. Types: {', '.join(FAULT_TYPES)}.")
@click.option("--noise-rate", type=float, default=None,
              help="Rate of every kind of messy-but-valid data (default: per-kind defaults; 0 = a clean firm).")
@click.option("--noise-rate-for", multiple=True, metavar="KIND=RATE",
              help=f"Rate of one kind of messy-but-valid data; repeatable. Kinds: {', '.join(NOISE_KINDS)}.")
def generate(data_dir: Path, scale: str, seed: int, as_of: str, erp_url: str | None,
             fault_rate: float | None, fault_rate_for: tuple[str, ...], noise_rate: float | None,
             noise_rate_for: tuple[str, ...]) -> None:
    """Generate a firm's history and its systems' state into DATA_DIR."""
    from sandbox.lifecycle import generate as run

    summary = run(data_dir, scale=scale, seed=seed, as_of=as_of, erp_url=erp_url,
                  fault_rates=_rates(fault_rate, fault_rate_for),
                  noise_rates=_rates(noise_rate, noise_rate_for, "--noise-rate-for"))
    _report(summary, f"Generated the {scale} firm (seed {seed})")


@sandbox.command()
@click.option("--data-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True)
@click.option("--days", type=float, required=True, help="How many days of activity to simulate.")
def advance(data_dir: Path, days: float) -> None:
    """Simulate more days of activity and apply them to every system."""
    from sandbox.lifecycle import advance as run

    summary = run(data_dir, days)
    _report(summary, f"Advanced {days:g} days")


@sandbox.command()
@click.option("--data-dir", type=click.Path(file_okay=False, exists=True, path_type=Path), required=True)
@click.option("--port", type=int, default=8765, show_default=True, help="0 picks a free port.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--rate-limits/--no-rate-limits", default=False, show_default=True,
              help="Enforce the vendors' published rate limits.")
@click.option("--hubspot-tier", type=click.Choice(["professional", "starter"]), default="professional",
              show_default=True, help="HubSpot limit: 190 (professional) or 100 (starter) requests per 10 s.")
@click.option("--faults", default="", metavar="SPEC",
              help="Fault mode, e.g. 'error=0.05,slow=0.02,slow_ms=1500,storm=0.01,storm_length=5,retry_after=0'.")
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve(data_dir: Path, port: int, host: str, rate_limits: bool, hubspot_tier: str, faults: str,
          access_log: bool) -> None:
    """Serve the firm's HubSpot, Stripe and Harvest APIs on one loopback port.

    Prints the settings that point a connector at this server, one NAME=value per line.
    """
    from sandbox.server.app import client_settings, make_server
    from sandbox.server.core import FaultSettings, ServerSettings

    try:
        fault_settings = FaultSettings.parse(faults)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from None
    settings = ServerSettings(rate_limits=rate_limits, hubspot_tier=hubspot_tier, faults=fault_settings,
                              access_log=access_log)
    server = make_server(data_dir, host=host, port=port, settings=settings)
    for name, value in client_settings(server).items():
        click.echo(f"{name}={value}")
    sys.stdout.flush()
    click.echo(f"Serving {data_dir} on {server.base_url} (/hubspot, /stripe, /harvest); Ctrl-C stops.", err=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _report(summary, headline: str) -> None:
    from sandbox.project import iso_seconds

    click.echo(f"{headline} up to {iso_seconds(summary.as_of)} in {summary.seconds:.1f} s: {summary.data_dir}")
    for system, counts in summary.counts.items():
        click.echo(f"  {system:8} " + ", ".join(f"{name} {count:,}" for name, count in counts.items()))
    click.echo(f"  ground truth: {summary.faults} injected faults in {summary.data_dir / 'ground_truth.jsonl'}")
    if summary.noise:
        click.echo("  messy but valid: " + ", ".join(f"{name} {count:,}" for name, count in summary.noise.items()))
