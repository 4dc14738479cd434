"""`make ui`: the Dagster UI (`dagster dev`) over the demo's firm, with its sandbox served.

The UI opens the demo's Dagster instance (`<data dir>/dagster_home`), so it shows the runs,
materialisations and report of the last `make demo`; runs launched from it load from the sandbox
and write the same warehouse. Without a firm in the data dir, the small one is generated first.
`dagster dev` runs in the foreground; Ctrl-C stops it, then the sandbox.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from orchestration.demo import MARKER, REPO, fresh_data_dir, pipeline_environment, start_server
from sandbox.lifecycle import generate

STOP_PATIENCE_S = 20  # how long dagster dev gets to stop its webserver, daemon and code server


def dagster_dev_command(host: str, port: int) -> list[str]:
    dagster = Path(sys.executable).with_name("dagster")
    return [str(dagster) if dagster.exists() else "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
            "-h", host, "-p", str(port)]


def _stop(process: subprocess.Popen, patience_s: float) -> None:
    """Give `process` `patience_s` to exit (it has had Ctrl-C already, or gets SIGINT now), then end it."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    for stop in (None, process.terminate, process.kill):
        if stop is not None:
            stop()
        try:
            process.wait(timeout=patience_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run(data_dir: str, host: str, port: int) -> None:
    data = Path(data_dir)
    if not (data / "sandbox.sqlite").exists():
        click.echo(f"No firm in {data} yet; generating the small one (make demo also runs the pipeline on it) ...")
        fresh_data_dir(data)
        summary = generate(data, scale="small", seed=1)
        click.echo(f"  {summary.faults} injected faults, {summary.seconds:.1f} s")
    elif not (data / MARKER).exists():
        click.echo(f"Serving the firm in {data} (not made by `concord demo`; left as it is).")
    process, settings = start_server(data)
    try:
        env = {**os.environ, **pipeline_environment(data, settings)}
        base = settings["SOURCES__HUBSPOT__BASE_URL"].rsplit("/", 1)[0]
        click.echo(f"Sandbox serving {data} on {base} (pid {process.pid}); warehouse {env['CONCORD_WAREHOUSE']}; "
                   f"Dagster instance {env['DAGSTER_HOME']}")
        click.echo(f"Starting the Dagster UI on http://{host}:{port} (Ctrl-C stops it and the sandbox) ...")
        dagster = subprocess.Popen(dagster_dev_command(host, port), env=env, cwd=REPO)
        try:
            code = dagster.wait()
        except KeyboardInterrupt:  # the terminal sent SIGINT to dagster dev as well: let it shut down
            _stop(dagster, STOP_PATIENCE_S)
            code = 0
    finally:
        _stop(process, 10)
        click.echo("Sandbox stopped.")
    if code:
        raise SystemExit(code)
