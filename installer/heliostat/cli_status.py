"""The commands that read a platform without changing it: status and history."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from heliostat.cli import config_option, output_option
from heliostat.cli_apply import UsageProblem, _open, reports_errors, state_dir_option
from heliostat.service_status import platform_summary

WATCH_SECONDS = 2.0


@click.command()
@config_option
@state_dir_option
@output_option
@click.option("--show-secret", "secret", metavar="NAME",
              help="Print the value of one of the platform's secrets, and nothing else.")
@click.option("--watch", is_flag=True,
              help="Show it again every 2 seconds, until Ctrl-C (JSON: one line each time).")
@reports_errors
def status(config_file: Path | None, state_dir: Path | None, output_format: str,
           secret: str | None, watch: bool) -> None:
    """Show each service: ready/desired, health, image, revision and age."""
    target = _open(config_file, state_dir)
    if secret is not None:
        _show_secret(target, secret)
        return
    if not watch:
        _status(target, output_format)
        return
    try:
        while True:
            if output_format == "json":
                _status(target, output_format, indent=None)
            else:
                click.clear()
                _status(target, output_format)
            time.sleep(WATCH_SECONDS)
    except KeyboardInterrupt:
        pass


def _status(target: Any, output_format: str, indent: int | None = 2) -> None:
    from heliostat.ledger import Ledger

    ledger = Ledger(target.driver.ledger_store())
    summary = platform_summary(target.name, target.driver, ledger)
    deployed, pending, rows = ledger.last_deployed(), ledger.pending(), summary["services"]
    if output_format == "json":
        click.echo(json.dumps(summary, indent=indent))
        return
    if deployed is None and not rows:
        click.echo(f"platform {target.name} is not installed")
    elif deployed is not None:
        click.echo(f"platform {target.name}: revision {deployed.number} "
                   f"({deployed.description}) deployed {deployed.updated_at}")
    if pending is not None:
        holder = _applying(ledger)
        if holder:
            click.echo(f"revision {pending.number} ({pending.description}) is being applied "
                       f"by {holder}")
        else:
            click.echo(f"revision {pending.number} ({pending.description}) was interrupted "
                       "and is pending: `heliostat upgrade` (or `install`) resumes it")
    if rows:
        table = [["SERVICE", "READY", "HEALTH", "IMAGE", "IMAGE ID", "REVISION", "AGE"]]
        table += [[r["service"], f"{r['ready']}/{r['desired']}", r["health"], r["image"],
                   (r["image_id"] or "")[7:19], ",".join(map(str, r["revisions"])),
                   _age(r["age_seconds"])] for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                         strict=True)).rstrip())


def _applying(ledger: Any) -> str | None:
    """Who applies the pending revision right now, if anyone: a pending revision with
    nobody holding the lock is one whose apply was interrupted."""
    from heliostat.ledger_lock import LockHeld

    try:
        with ledger.lock("status"):
            return None
    except LockHeld as held:
        return held.lease.holder.describe()


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _show_secret(target: Any, name: str) -> None:
    if name not in target.model.secrets:
        known = ", ".join(sorted(target.model.secrets)) or "none"
        raise UsageProblem(f"platform {target.name} has no secret {name!r} (it has: {known})")
    value = target.secret_value(name)
    if value is None:
        raise UsageProblem(f"secret {name} has not been generated yet: install the platform")
    sys.stdout.write(value + "\n")


@click.command()
@config_option
@state_dir_option
@output_option
@reports_errors
def history(config_file: Path | None, state_dir: Path | None, output_format: str) -> None:
    """List the platform's revisions, oldest first."""
    from heliostat.ledger import Ledger

    target = _open(config_file, state_dir)
    revisions = Ledger(target.driver.ledger_store()).revisions()
    if output_format == "json":
        click.echo(json.dumps([{"revision": r.number, "status": r.status, "origin": r.origin,
                                "description": r.description, "created_at": r.created_at,
                                "updated_at": r.updated_at, "bundle_version": r.bundle_version,
                                "reason": r.reason, "backups": r.backups}
                               for r in revisions], indent=2))
        return
    if not revisions:
        click.echo(f"platform {target.name} has no revisions")
        return
    table = [["REVISION", "STATUS", "UPDATED", "ORIGIN", "DESCRIPTION"]]
    table += [[str(r.number), r.status, r.updated_at, r.origin,
               r.description + (f": {r.reason.splitlines()[0]}" if r.reason else "")]
              for r in revisions]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                     strict=True)).rstrip())
