"""The commands that change a running platform: install, upgrade, diff, rollback, uninstall.

Each goes through `heliostat.apply` — one path for every change — and prints its
progress on standard error and its result on standard output. Exit codes: 0 done (or
nothing to do), 1 failed (rolled back, or changes found for `diff`), 2 a mistake in
the input or the command line.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from heliostat import __version__
from heliostat.cli import EXIT_FAILURE, EXIT_INVALID, _load, config_option, output_option
from heliostat.cli import reports_errors as reports_input_errors

TARGET_OVERRIDES = "heliostat.target_overrides"  # click context meta: --kubeconfig & co.


# A namespace is an RFC 1123 label, as target.kubernetes.namespace's schema says.
_NAMESPACE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _override(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value and param.name == "namespace" and not _NAMESPACE.fullmatch(value):
        raise click.BadParameter(
            f"{value!r} is not a Kubernetes namespace name: at most 63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit")
    if value:
        ctx.meta.setdefault(TARGET_OVERRIDES, {})[param.name] = value
    return value


_target_options = (
    click.option(
        "--state-dir", type=click.Path(file_okay=False, path_type=Path),
        help="Directory holding every platform's ledger and secrets on the Docker host "
             "(default: target.compose.state_dir, /var/lib/heliostat)."),
    click.option("--kubeconfig", expose_value=False, callback=_override,
                 help="Kubernetes: the kubeconfig file (default: target.kubernetes.kubeconfig, "
                      "else $KUBECONFIG, else ~/.kube/config)."),
    click.option("--context", expose_value=False, callback=_override,
                 help="Kubernetes: the kubeconfig context (default: target.kubernetes.context, "
                      "else the current one)."),
    click.option("--namespace", "-n", expose_value=False, callback=_override,
                 help="Kubernetes: the platform's namespace (default: "
                      "target.kubernetes.namespace, else the platform's name)."),
)


def state_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where the platform's target is: --state-dir (Compose), --kubeconfig, --context and
    --namespace (Kubernetes)."""
    for option in reversed(_target_options):
        command = option(command)
    return command


force_conflicts_option = click.option(
    "--force-conflicts", is_flag=True, expose_value=False, callback=_override,
    help="Kubernetes: take over fields another field manager set (kubectl, a controller) "
         "instead of stopping at the conflict.")
no_rollback_option = click.option(
    "--no-rollback", is_flag=True,
    help="On a failed health gate, leave the platform as it is for debugging.")


class UsageProblem(Exception):
    """The command cannot run as asked (exit 2)."""


def reports_errors(command: Callable[..., Any], failed: int = EXIT_FAILURE
                   ) -> Callable[..., Any]:
    """Errors of the target, the ledger and the lock as messages, never tracebacks; the
    command then exits `failed` (diff's 1 says "changes", so its errors exit 2)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from heliostat.drivers.compose_errors import EngineError
        from heliostat.drivers.compose_files import StateFileError
        from heliostat.drivers.compose_objects import ComposeFileError
        from heliostat.drivers.kubernetes_errors import KubernetesError
        from heliostat.ledger_lock import LedgerError
        from heliostat.oci_registry import RegistryError
        from heliostat.plan import PlanError
        from heliostat.secret_values import SecretSourceError

        try:
            return command(*args, **kwargs)
        except (UsageProblem, SecretSourceError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_INVALID)
        except (EngineError, StateFileError, LedgerError, ComposeFileError,
                KubernetesError, RegistryError) as exc:
            # LedgerError includes LockHeld, which names the command holding the lock
            click.echo(f"error: {exc}", err=True)
            sys.exit(failed)
        except PlanError as exc:
            click.echo(f"error: {exc}\n(this is a bug in heliostat's module catalog, not in "
                       "your configuration)", err=True)
            sys.exit(failed)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: a revision being applied stays pending; the next "
                       "`heliostat install` or `upgrade` resumes it", err=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)  # health-gate threads must not keep the process alive

    return reports_input_errors(wrapper)


def _progress(started: float) -> Callable[[str], None]:
    def show(message: str) -> None:
        click.echo(f"[{time.monotonic() - started:6.1f}s] {message}", err=True)

    return show


def _open(config_file: Path | None, state_dir: Path | None, bundle: Path | None = None) -> Any:
    from heliostat.target import open_target

    overrides = click.get_current_context().meta.get(TARGET_OVERRIDES, {})
    return open_target(_load(config_file), state_dir, bundle=bundle, **overrides)


def _installed(ledger: Any) -> Any:
    """The deployed revision, unless it is an uninstall's (which deploys nothing)."""
    last = ledger.last_deployed()
    return last if last is not None and last.manifests else None


def _load_bundle(bundle: Path | None, target: Any, show: Callable[[str], None]) -> dict[str, str]:
    """Bring the bundle's images to the target (loaded into its engine, pushed to its
    registry), after `_checked_bundle`; returns what the ledger records of it."""
    if bundle is None:
        return {}
    from heliostat.bundle import BundleError

    recorded = _checked_bundle(bundle, target)
    try:
        target.receive_images(bundle, show)
    except BundleError as exc:
        raise UsageProblem(f"{bundle}: {exc}") from None
    return recorded


def _checked_bundle(bundle: Path, target: Any) -> dict[str, str]:
    """What the ledger records of the bundle (version and digest), once it is known to be
    a bundle of this heliostat holding every image the platform runs."""
    from heliostat.bundle import BundleError, missing_images
    from heliostat.bundle.catalog_images import model_images
    from heliostat.bundle.reader import BundleReader

    try:
        with BundleReader(bundle) as reader:
            missing = missing_images(reader.manifest, model_images(target.model))
            version = reader.manifest.version
            recorded = {"bundle_version": version, "bundle_digest": reader.digest}
    except BundleError as exc:
        raise UsageProblem(f"{bundle}: {exc}") from None
    if version != __version__:
        raise UsageProblem(f"{bundle} is heliostat {version}'s, and this is heliostat "
                           f"{__version__}: run the installer the bundle holds "
                           "(`heliostat bundle inspect` shows it)")
    if missing:
        raise UsageProblem(f"{bundle} lacks the image(s) {', '.join(missing)} that "
                           f"platform {target.name} runs; use a bundle built for it")
    return recorded


def _apply(target: Any, change: Any, command: str, rollback: bool, output_format: str,
           show: Callable[[str], None]) -> None:
    from heliostat.apply import Applier

    outcome = Applier(target.driver, show, rollback=rollback).run(change, command)
    # Where to reach what was just installed; a rollback's config may not be this one.
    access = target.access() if command in ("install", "upgrade") and outcome.ok else None
    if output_format == "json":
        click.echo(json.dumps({**_outcome_json(target, outcome),
                               "access": access.to_json() if access else None}, indent=2))
    else:
        _report(target, outcome)
        if access and (access.urls or access.logins):
            click.echo("\n".join([f"platform {target.name} answers at:", *access.lines()]))
    if not outcome.ok:
        sys.exit(EXIT_FAILURE)


_DONE = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted",
         "unchanged": "unchanged"}


def _report(target: Any, outcome: Any) -> None:
    elapsed = f"{outcome.elapsed:.1f}s"
    if outcome.resumed is not None:
        click.echo(f"interrupted revision {outcome.resumed.number} "
                   f"({outcome.resumed.description}) was resumed: {outcome.resumed.status}")
    if outcome.status == "unchanged":
        click.echo(f"platform {target.name}: nothing to do, revision {outcome.revision} is "
                   f"deployed and all {outcome.plan.counts()['unchanged']} containers are "
                   f"unchanged ({elapsed})")
        return
    if outcome.status == "deployed":
        done = ", ".join(f"{n} {_DONE[action]}" for action, n in outcome.plan.counts().items()
                         if n)
        click.echo(f"platform {target.name}: revision {outcome.revision} deployed in "
                   f"{elapsed} ({done or 'no containers'})")
        return
    click.echo(f"error: revision {outcome.revision} failed: {outcome.failure.text()}", err=True)
    if outcome.status == "rolled-back":
        where = (f"revision {outcome.rolled_back_to}" if outcome.rolled_back_to
                 else "nothing installed (its containers were removed; volumes kept)")
        click.echo(f"rolled back to {where}; `heliostat history` shows it", err=True)
    elif outcome.rollback_failure is not None:
        click.echo(f"rolling back failed too: {outcome.rollback_failure.text()}", err=True)
    else:
        click.echo("left as it is (--no-rollback); `heliostat rollback` goes back to the last "
                   "deployed revision", err=True)


def _outcome_json(target: Any, outcome: Any) -> dict[str, Any]:
    def failure(f: Any) -> dict[str, Any] | None:
        return None if f is None else {"key": f.key, "service": f.service, "reason": f.reason,
                                       "logs": list(f.logs)}

    return {"platform": target.name, "status": outcome.status, "revision": outcome.revision,
            "seconds": round(outcome.elapsed, 2), "plan": outcome.plan.to_json(),
            "failure": failure(outcome.failure), "rolled_back_to": outcome.rolled_back_to,
            "rollback_failure": failure(outcome.rollback_failure),
            "resumed": outcome.resumed.number if outcome.resumed else None}


bundle_option = click.option(
    "--bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Bring the platform's images from this bundle first: loaded into the Docker "
         "engine, or pushed to `images.registry` for a Kubernetes cluster (the objects then "
         "pin their images to the bundle's digests).")


@click.command()
@config_option
@state_dir_option
@force_conflicts_option
@bundle_option
@no_rollback_option
@output_option
@reports_errors
def install(config_file: Path | None, state_dir: Path | None, bundle: Path | None,
            no_rollback: bool, output_format: str) -> None:
    """Install the platform described by platform.yaml onto its target."""
    show = _progress(time.monotonic())
    target = _open(config_file, state_dir, bundle)
    from heliostat.ledger import Ledger

    installed = _installed(Ledger(target.driver.ledger_store()))
    if installed is not None:
        raise UsageProblem(f"platform {target.name} is already installed (revision "
                           f"{installed.number}); use `heliostat upgrade` to change it")
    loaded = _load_bundle(bundle, target, show)
    _apply(target, target.change("install", bundle=loaded), "install", not no_rollback,
           output_format, show)


@click.command()
@config_option
@state_dir_option
@force_conflicts_option
@bundle_option
@click.option("--install", "install_missing", is_flag=True,
              help="Install the platform if it is not installed yet (as `helm upgrade "
                   "--install`).")
@no_rollback_option
@output_option
@reports_errors
def upgrade(config_file: Path | None, state_dir: Path | None, bundle: Path | None,
            install_missing: bool, no_rollback: bool, output_format: str) -> None:
    """Change the installed platform to what platform.yaml describes, health-gated."""
    show = _progress(time.monotonic())
    target = _open(config_file, state_dir, bundle)
    from heliostat.ledger import Ledger

    ledger = Ledger(target.driver.ledger_store())
    command = "upgrade"
    if _installed(ledger) is None and ledger.pending() is None:
        if not install_missing:
            raise UsageProblem(f"platform {target.name} is not installed (no deployed "
                               f"revision in {ledger.store.location}); use `heliostat "
                               "install`")
        command = "install"
    loaded = _load_bundle(bundle, target, show)
    _apply(target, target.change(command, bundle=loaded), command, not no_rollback,
           output_format, show)


@click.command()
@config_option
@state_dir_option
@force_conflicts_option
@click.option("--bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Plan as `install --bundle` or `upgrade --bundle` of this bundle would.")
@output_option
@functools.partial(reports_errors, failed=EXIT_INVALID)
def diff(config_file: Path | None, state_dir: Path | None, bundle: Path | None,
         output_format: str) -> None:
    """Show what install or upgrade would change; exit 0 if nothing, 1 if something, 2 if
    it cannot tell (an error)."""
    from heliostat.ledger import Ledger
    from heliostat.plan import plan

    target = _open(config_file, state_dir, bundle)
    if bundle is not None:
        _checked_bundle(bundle, target)  # as install and upgrade refuse it, before planning
    driver = target.driver
    steps = plan(driver.desired_objects(target.manifests), driver.observe(),
                 driver.immutable_fields)
    pending = Ledger(driver.ledger_store()).pending()
    if output_format == "json":
        click.echo(json.dumps({**steps.to_json(), "pending": pending.number if pending else None},
                              indent=2))
    else:
        if pending is not None:
            click.echo(f"note: revision {pending.number} ({pending.description}) was "
                       "interrupted; `heliostat upgrade` resumes it first", err=True)
        click.echo(steps.text(), nl=False)
    sys.exit(EXIT_FAILURE if steps.has_changes else 0)


@click.command()
@click.argument("revision", type=int, required=False)
@config_option
@state_dir_option
@force_conflicts_option
@click.option("--restore-data", is_flag=True,
              help="Also load back the data dumps taken before later revisions changed "
                   "postgres (what was written since is lost).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before restoring data.")
@no_rollback_option
@output_option
@reports_errors
def rollback(revision: int | None, config_file: Path | None, state_dir: Path | None,
             restore_data: bool, yes: bool, no_rollback: bool, output_format: str) -> None:
    """Go back to REVISION (default: the one deployed before the current one).

    The rollback is a new revision holding REVISION's manifests; history is never
    rewritten. Data stays as it is unless --restore-data."""
    from heliostat.ledger import Ledger

    show = _progress(time.monotonic())
    target = _open(config_file, state_dir)
    ledger = Ledger(target.driver.ledger_store())
    chosen = _rollback_target(ledger, revision)
    description = f"rollback to {chosen.number}"
    restore = _data_to_restore(ledger, chosen, yes) if restore_data else {}
    if restore:
        description += " with the data of " + ", ".join(
            f"{service} from before revision {backup['revision']}"
            for service, backup in sorted(restore.items()))
    change = dataclasses.replace(
        target.change(description, manifests=chosen.manifests, config=chosen.config),
        restore=restore)
    _apply(target, change, f"rollback to {chosen.number}", not no_rollback, output_format, show)


def _data_to_restore(ledger: Any, chosen: Any, yes: bool) -> dict[str, Any]:
    """The dumps a rollback to `chosen` loads back, confirmed by the user."""
    from heliostat.data_backup import backups_since

    found = backups_since(ledger, chosen.number)
    if not found:
        raise UsageProblem(f"no revision after {chosen.number} changed a service that is "
                           "backed up (postgres), so no dump was taken and its data is "
                           f"still revision {chosen.number}'s; roll back without "
                           "--restore-data")
    for service, backup in sorted(found.items()):
        click.echo(f"{service}: the dump taken {backup['taken_at']} before revision "
                   f"{backup['revision']} ({backup['bytes'] / 1e6:.1f} MB) replaces its "
                   "current data", err=True)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageProblem("--restore-data replaces data and asks for confirmation; "
                               "pass --yes to run it without a terminal")
        click.confirm("Everything written since those dumps is lost. Restore?", abort=True)
    return found


def _rollback_target(ledger: Any, number: int | None) -> Any:
    from heliostat.ledger import UnknownRevision

    current = ledger.last_deployed()
    if number is None:
        if current is None:
            raise UsageProblem("nothing is deployed, so there is nothing to roll back from")
        earlier = [r for r in ledger.revisions()
                   if r.number < current.number and r.status == "superseded" and r.manifests]
        if not earlier:
            raise UsageProblem(f"revision {current.number} is the first one deployed; there is "
                               "no earlier revision to roll back to")
        return earlier[-1]
    try:
        chosen = ledger.revision(number)
    except UnknownRevision as exc:
        raise UsageProblem(str(exc)) from None
    if chosen.status not in ("deployed", "superseded") or not chosen.manifests:
        raise UsageProblem(f"revision {number} was never deployed ({chosen.status}"
                           f"{', an uninstall' if not chosen.manifests else ''}); roll back "
                           "to one that was (`heliostat history`)")
    return chosen


@click.command()
@config_option
@state_dir_option
@click.option("--purge", is_flag=True,
              help="Also delete the volumes (all data), the secrets and the ledger.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@reports_errors
def uninstall(config_file: Path | None, state_dir: Path | None, purge: bool,
              yes: bool) -> None:
    """Remove the platform's containers and network; volumes stay unless --purge."""
    from heliostat.apply import Applier, Change
    from heliostat.ledger import Ledger

    show = _progress(time.monotonic())
    target = _open(config_file, state_dir)
    driver = target.driver
    live = driver.observe()
    ledger = Ledger(driver.ledger_store())
    if not live and not ledger.numbers() and not purge:
        click.echo(f"platform {target.name} is not installed: nothing to uninstall")
        return
    what = ("its containers, network, volumes (ALL DATA), secrets and release history"
            if purge else "its containers and network (volumes, secrets and history are kept)")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageProblem("uninstall asks for confirmation; pass --yes to run it "
                               "without a terminal")
        click.confirm(f"Uninstall platform {target.name}: remove {what}?", abort=True)
    outcome = Applier(driver, show).run(Change("uninstall", {}), "uninstall")
    if not outcome.ok:
        click.echo(f"error: {outcome.failure.text() if outcome.failure else outcome.status}",
                   err=True)
        sys.exit(EXIT_FAILURE)
    removed = driver.remove_platform_objects(purge)
    for item in removed:
        show(f"  - removed {item}")
    click.echo(f"platform {target.name} uninstalled"
               + ("" if purge else "; its volumes, secrets and history are kept"))


def register(group: click.Group) -> None:
    """Add the apply commands (and status/history) to the `heliostat` group."""
    from heliostat.cli_doctor import doctor
    from heliostat.cli_ssh import over_ssh
    from heliostat.cli_status import history, status

    for command in (install, upgrade, diff, rollback, uninstall, status, history, doctor):
        group.add_command(over_ssh(command))
