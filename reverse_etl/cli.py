"""`python -m reverse_etl`: push, preview and operate reverse ETL without Dagster.

    python -m reverse_etl push [--object companies|deals|timeline_notes|all] [--confirm]
    python -m reverse_etl dry-run [--object ...] [--show N]
    python -m reverse_etl dead-letters [--object ...] [--status pending|parked]
    python -m reverse_etl requeue [--object ...] [RECORD_ID ...]

Settings come from the environment (see `reverse_etl.settings`). Exit status: 0 when every
push succeeded (or for the read-only commands), 2 when a guard refused (re-run with
`--confirm` once you have checked why), 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys

from reverse_etl.contract import PUSHABLE
from reverse_etl.dead_letters import list_dead_letters, requeue
from reverse_etl.errors import GuardRefused, ReverseEtlError
from reverse_etl.push import PushResult, push
from reverse_etl.settings import Settings, SettingsError

COUNTS = ("total", "sent", "unchanged", "rejected", "pending", "parked", "write_calls", "requests")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reverse_etl", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("push", "send what changed to HubSpot"),
                       ("dry-run", "show the per-record diff the next push would send; sends nothing")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--object", choices=[*PUSHABLE, "all"], default="all")
        if name == "push":
            command.add_argument("--confirm", action="store_true",
                                 help="push even though a guard (change share, freshness) refuses")
        else:
            command.add_argument("--show", type=int, default=50, metavar="N",
                                 help="print the first N changed values (default 50; 0: none)")
    letters = commands.add_parser("dead-letters", help="list records HubSpot rejected")
    letters.add_argument("--object", choices=list(PUSHABLE))
    letters.add_argument("--status", choices=["pending", "parked"])
    again = commands.add_parser("requeue", help="make parked dead letters pending again")
    again.add_argument("--object", choices=list(PUSHABLE))
    again.add_argument("record_ids", nargs="*", metavar="RECORD_ID", help="default: every parked one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"reverse ETL: {exc}", file=sys.stderr)
        return 1
    if args.command == "dead-letters":
        found = list_dead_letters(settings, object_type=args.object, status=args.status)
        for d in found:
            last = d.last_failed_at.strftime("%Y-%m-%d %H:%M:%S")
            print(f"{d.object_type} {d.record_id}: {d.status}, {d.attempts} attempts, last {last} — "
                  f"{d.error_category}: {d.error_message}")
        print(f"{len(found)} dead letters")
        return 0
    if args.command == "requeue":
        n = requeue(settings, object_type=args.object, record_ids=args.record_ids or None)
        print(f"{n} parked dead letters requeued; the next push sends them")
        return 0

    objects = list(PUSHABLE) if args.object == "all" else [args.object]
    code = 0
    for object_type in objects:
        try:
            result = push(object_type, settings=settings, confirm=getattr(args, "confirm", False),
                          dry_run=args.command == "dry-run")
        except GuardRefused as exc:
            print(f"{object_type}: REFUSED: {'; '.join(exc.refusals)}. Check, then re-run with --confirm.",
                  file=sys.stderr)
            code = max(code, 2)
            continue
        except ReverseEtlError as exc:
            print(f"{object_type}: FAILED: {exc}", file=sys.stderr)
            code = max(code, 1) if code != 2 else code
            continue
        _print(result, getattr(args, "show", 0))
        if result.mode == "push" and not result.ok:
            code = max(code, 1) if code != 2 else code
    return code


def _print(result: PushResult, show: int) -> None:
    counts = ", ".join(f"{name} {getattr(result, name)}" for name in COUNTS)
    extra = " (first push)" if result.first_push else ""
    print(f"{result.object_type}: {result.status}{extra} — {counts}; {result.seconds:.1f} s; run {result.run_id}")
    if result.message and result.status not in ("success", "dry_run"):
        print(f"  {result.message}")
    for refusal in result.guard_refusals:
        print(f"  guard: {refusal}")
    rows = result.diff_table()
    for record_id, prop, old, new in rows[:show]:
        print(f"  {record_id} {prop}: {old if old is not None else '(never sent)'!r} -> {new!r}")
    if 0 < show < len(rows):
        print(f"  ... {len(rows) - show} more values")
