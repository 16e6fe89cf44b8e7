"""The Compose target's commands over SSH: with `target.compose.host: ssh://…`, a command
ships heliostat and its files to the Docker host and runs there (heliostat.transports).

The command line given here is rebuilt for the host with the staged paths in place of the
local ones, so the output, the exit code and `--output json` are those of the same command
run on the host.
"""

from __future__ import annotations

import functools
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

ZIPAPP_VARIABLE = "HELIOSTAT_ZIPAPP"
RUNNING_ZIPAPP_VARIABLE = "HELIOSTAT_RUNNING_ZIPAPP"
# Commands that read or change the engine; doctor reports an unusable engine itself.
NEEDS_NO_ENGINE = frozenset({"doctor"})

def accept_host_key_option() -> click.Option:
    return click.Option(
        ["--accept-host-key"], multiple=True, metavar="SHA256:…",
        help="Trust this SSH host key (of the Docker host or a jump host) although "
             "known_hosts lacks it or holds another one; the refusal prints the fingerprint.")


def over_ssh(command: click.Command) -> click.Command:
    """Adds --accept-host-key to `command` and makes it run on the Docker host when the
    platform's target is an ssh:// host."""
    from heliostat.cli import reports_errors  # not at the top: heliostat.cli imports this module

    callback = command.callback
    assert callback is not None
    command.params.append(accept_host_key_option())

    @functools.wraps(callback)
    @reports_errors
    def run(**kwargs: Any) -> Any:
        accepted = kwargs.pop("accept_host_key")
        from heliostat.transports.local import follow_session, shipped_run

        if shipped_run():
            follow_session()
            return callback(**kwargs)
        shipment = _ssh_shipment(kwargs.get("config_file"))
        if shipment is None:
            return callback(**kwargs)
        config, text = shipment
        sys.exit(_run_on_host(command, kwargs, config, text, accepted))

    command.callback = run
    return command


def _ssh_shipment(config_file: Path | None) -> tuple[Any, bytes] | None:
    """The config and its text when its target is an SSH host; None for the local engine."""
    from heliostat.cli import _load

    if config_file is None:
        return None  # the embedded default platform is for the local engine
    from_stdin = str(config_file) == "-"
    if from_stdin:
        raw = sys.stdin.buffer.read()
        # The command's own loading reads standard input again.
        sys.stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
    else:
        try:
            raw = Path(config_file).read_bytes()
        except OSError:
            return None  # the command's own loading says what is wrong with the file
    if b"ssh://" not in raw:
        return None  # a local target: spare local commands a second validation
    config = _load(config_file)
    if from_stdin:
        sys.stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
    if config.profile != "compose" or config.values["target"]["compose"]["host"] == "local":
        return None
    return config, raw


def _run_on_host(command: click.Command, kwargs: dict[str, Any], config: Any, text: bytes,
                 accepted: tuple[str, ...]) -> int:
    import paramiko

    from heliostat.cli import EXIT_FAILURE
    from heliostat.cli_apply import _progress
    from heliostat.transports import TransportError
    from heliostat.transports.remote_run import ConnectionLost
    from heliostat.transports.ssh_run import ShippedRun, SshTarget, lost_connection_hint

    show = _progress(time.monotonic())
    compose = config.values["target"]["compose"]
    verb = command.name or ""
    running = False  # whether the command runs on the host yet (or is still being shipped)
    try:
        target = SshTarget.from_settings(compose["host"], compose.get("ssh") or {}, accepted)
        zipapp = installer_zipapp()
        if verb == "uninstall" and not kwargs.get("yes") and sys.stdin.isatty():
            # The host has no terminal to ask on: ask here, before connecting.
            what = ("its containers, network, volumes (ALL DATA), secrets and release "
                    "history" if kwargs.get("purge") else "its containers and network "
                    "(volumes, secrets and history are kept)")
            click.confirm(f"Uninstall platform {config.name} on {compose['host']}: remove "
                          f"{what}?", abort=True)
            kwargs = {**kwargs, "yes": True}
        with ShippedRun(target, show, needs_engine=verb not in NEEDS_NO_ENGINE) as run:
            staged_zipapp = run.stage(zipapp).remote_path
            # Named after the platform: each platform's config replaces only its own.
            files = {"config_file": run.stage_text(f"{config.name}.platform.yaml",
                                                   text).remote_path}
            bundle = kwargs.get("bundle")
            if bundle is not None and Path(bundle).is_file():
                files["bundle"] = run.stage(Path(bundle)).remote_path
            show(f"running heliostat {verb} on {run.connection.target}")
            running = True
            return run.run(staged_zipapp, remote_arguments(command, kwargs, files))
    except ConnectionLost as exc:
        click.echo(f"error: {exc}" + (f"; {lost_connection_hint(verb)}" if running else ""),
                   err=True)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        # Closing the connection ends the run on the host as Ctrl-C ends a local one.
        click.echo("\ninterrupted" + (f": {lost_connection_hint(verb)}" if running else ""),
                   err=True)
        return 130
    except TransportError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_FAILURE
    except (paramiko.SSHException, EOFError, OSError) as exc:
        # What the transport does not name more precisely: still one line, no traceback.
        click.echo(f"error: the SSH connection failed ({exc or type(exc).__name__})"
                   + (f"; {lost_connection_hint(verb)}" if running else ""), err=True)
        return EXIT_FAILURE


def remote_arguments(command: click.Command, values: dict[str, Any],
                     replaced: dict[str, str]) -> list[str]:
    """The command line that runs `command` with `values` on the host; `replaced` gives
    the host's path for options naming local files."""
    arguments = [command.name or ""]
    for param in command.params:
        if param.name not in values:
            continue
        value = replaced.get(param.name, values[param.name])
        if isinstance(param, click.Argument):
            if value is not None:
                arguments.append(str(value))
            continue
        assert isinstance(param, click.Option)
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if param.is_flag:
            if value:  # every flag of these commands is off unless given
                arguments.append(flag)
            continue
        if value is None or (value == param.default and param.name not in replaced):
            continue
        for item in value if param.multiple else [value]:
            arguments += [flag, str(item)]
    return arguments


def installer_zipapp() -> Path:
    """What to ship: the zipapp this process runs from, else HELIOSTAT_ZIPAPP, else the
    one `make zipapp` builds in this checkout."""
    import heliostat
    from heliostat.transports import TransportError

    running = os.environ.get(RUNNING_ZIPAPP_VARIABLE)  # set by the zipapp's bootstrap
    if running and Path(running).is_file():
        return Path(running)
    if os.environ.get(ZIPAPP_VARIABLE):
        path = Path(os.environ[ZIPAPP_VARIABLE])
    else:
        path = Path(heliostat.__file__).resolve().parents[2] / "dist" / "heliostat.pyz"
    if not path.is_file():
        raise TransportError(f"no heliostat zipapp to ship to the host at {path}: run "
                             f"`make zipapp`, or name one in {ZIPAPP_VARIABLE}")
    return path
