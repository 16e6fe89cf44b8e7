"""`heliostat doctor`: can this target (a Docker host, a Kubernetes cluster) take the
platform? A preflight that changes nothing.

Exit codes: 0 every check ok or a warning, 1 a check failed, 2 a mistake in the input or
the command line (as the other commands).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from heliostat.cli import config_option, output_option
from heliostat.cli_apply import _open, reports_errors, state_dir_option


@click.command()
@config_option
@state_dir_option
# Not `exists=True` as install's --bundle: a bundle that is not there is one of the
# things doctor reports, with the other findings, rather than a usage error.
@click.option("--bundle", type=click.Path(dir_okay=False, path_type=Path),
              help="Check this bundle too: that it is there, intact as far as its manifest "
                   "tells, and holds every image the platform runs.")
@output_option
@reports_errors
def doctor(config_file: Path | None, state_dir: Path | None, bundle: Path | None,
           output_format: str) -> None:
    """Check that the platform's target can take it. Changes nothing.

    \b
    Compose: the engine, clock, memory, disks, ports, bundle, images, host folders, state
    directory and lock.
    Kubernetes: the kubeconfig, the API server and its version, this user's rights in the
    namespace, the storage class, the namespace, the lock, the registry and the bundle.

    Exit 0 when nothing failed (warnings allowed), 1 when something did."""
    from heliostat.doctor import exit_code, report_json, report_text

    target = _open(config_file, state_dir)
    preflight = target.preflight(bundle)
    checks = preflight.checks()
    if output_format == "json":
        click.echo(json.dumps(report_json(target.name, checks), indent=2))
    else:
        click.echo(report_text(target.name, checks, unicode=_prints("✓✗"),
                               where=preflight.where), nl=False)
    sys.exit(exit_code(checks))


def _prints(text: str) -> bool:
    """Whether standard output can show `text`: a C locale or a log file in ASCII gets
    the ASCII markers instead of an encoding error."""
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
