"""The ssh transport end to end: connect (through jump hosts), check that the host can run
heliostat, stage the zipapp and the command's files there, run the staged zipapp with the
host's python3 against its local Docker engine, and stream the output back."""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from heliostat.file_digest import sha256_file
from heliostat.transports import TransportError
from heliostat.transports.address import SshAddress, parse_address
from heliostat.transports.connection import Credentials, HostKeyPolicy, SshConnection, connect
from heliostat.transports.digest_cache import cached_sha256
from heliostat.transports.local import ON_HOST_VARIABLE, WORKSTATION_CLOCK_VARIABLE
from heliostat.transports.remote_run import ConnectionLost, run_captured, run_streamed
from heliostat.transports.ssh_config import DEFAULT_CONFIG, load_ssh_config
from heliostat.transports.upload import Staged, UploadMeter, stage_file

MIN_PYTHON = (3, 10)
STAGING = ".cache/heliostat/staging"  # under the SSH user's home on the host
# Runs on the host's python3, whatever its version, so: nothing newer than 3.6 syntax.
HOST_PROBE = """
import json, os, pwd, sys, time
engine = os.environ.get('DOCKER_HOST') or 'unix:///var/run/docker.sock'
socket = engine[len('unix://'):] if engine.startswith('unix://') else None
print(json.dumps({
    'python': list(sys.version_info[:3]),
    'home': os.path.expanduser('~'),
    'user': pwd.getpwuid(os.getuid()).pw_name,
    'engine': engine,
    'socket': socket,
    'socket_exists': bool(socket) and os.path.exists(socket),
    'socket_usable': bool(socket) and os.access(socket, os.R_OK | os.W_OK),
    'time': time.time(),
    'home_free': os.statvfs(os.path.expanduser('~')).f_bavail
                 * os.statvfs(os.path.expanduser('~')).f_frsize,
}))
"""


class HostUnsuitable(TransportError):
    """The host is reachable but cannot run heliostat as it is."""


@dataclass(frozen=True)
class HostFacts:
    python: tuple[int, ...]
    home: str
    user: str
    engine: str
    socket: str | None
    socket_exists: bool
    socket_usable: bool
    time: float
    home_free: int  # bytes free for the staging directory
    # The host's clock minus this machine's, and the measurement's uncertainty (half the
    # probe's round trip): doctor reports it (WORKSTATION_CLOCK_VARIABLE).
    clock_skew: float = 0.0
    clock_uncertainty: float = 0.0


@dataclass(frozen=True)
class SshTarget:
    """How to reach the Docker host: from platform.yaml's target.compose and the flags."""

    address: SshAddress
    jumps: tuple[SshAddress, ...] = ()
    credentials: Credentials = field(default_factory=Credentials)
    policy: HostKeyPolicy = field(default_factory=HostKeyPolicy)
    ssh_config: Path = DEFAULT_CONFIG

    @classmethod
    def from_settings(cls, host: str, ssh: Mapping[str, Any],
                      accepted: Iterable[str] = ()) -> SshTarget:
        """`host` is target.compose.host (`ssh://…`), `ssh` is target.compose.ssh."""

        def path(key: str) -> Path | None:
            return Path(ssh[key]).expanduser() if ssh.get(key) else None

        fingerprints = {*accepted, *([ssh["host_key_fingerprint"]]
                                     if ssh.get("host_key_fingerprint") else [])}
        known_hosts = path("known_hosts")
        return cls(
            address=parse_address(host),
            jumps=tuple(parse_address(hop) for hop in ssh.get("jump_hosts") or ()),
            credentials=Credentials(path("key_file"), path("key_passphrase_file")),
            # The schema's default known_hosts file defers to ~/.ssh/config's choice.
            policy=HostKeyPolicy(() if ssh.get("known_hosts") in (None, "~/.ssh/known_hosts")
                                 or known_hosts is None else (known_hosts,),
                                 frozenset(fingerprints)))


def probe_host(transport: paramiko.Transport, where: str) -> HostFacts:
    before = time.time()
    result = run_captured(transport, "command -v python3 >/dev/null 2>&1 || exit 127; "
                                     f"exec python3 -c {shlex.quote(HOST_PROBE)}")
    after = time.time()
    if result.exit_code == 127:
        raise HostUnsuitable(f"{where} has no python3: install CPython 3.10 or newer there "
                             "(Debian/Ubuntu: apt-get install python3); heliostat needs "
                             "nothing else")
    try:
        reported = json.loads(result.stdout)
        facts = HostFacts(**{**reported, "python": tuple(reported["python"]),
                             "clock_skew": reported["time"] - (before + after) / 2,
                             "clock_uncertainty": (after - before) / 2})
    except (ValueError, KeyError, TypeError):
        raise HostUnsuitable(f"python3 on {where} does not run heliostat's check "
                             f"(exit {result.exit_code}): "
                             f"{result.stderr.decode(errors='replace').strip()[-300:]}") \
            from None
    if facts.python < MIN_PYTHON:
        raise HostUnsuitable(f"python3 on {where} is {'.'.join(map(str, facts.python))}; "
                             "heliostat needs CPython 3.10 or newer there")
    return facts


def require_engine(facts: HostFacts, where: str) -> None:
    """The user must be able to use the host's Docker socket (doctor reports it instead)."""
    if facts.socket is None:
        return  # DOCKER_HOST names a TCP engine: the run itself reports if it cannot reach it
    if not facts.socket_exists:
        raise HostUnsuitable(f"{where} has no Docker socket at {facts.socket}: install and "
                             "start the Docker engine there")
    if not facts.socket_usable:
        raise HostUnsuitable(f"user {facts.user} on {where} cannot use the Docker socket "
                             f"{facts.socket}: add it to the docker group (usermod -aG "
                             f"docker {facts.user}, then log in again) or connect as root")


class ShippedRun:
    """One command over SSH: `with ShippedRun(...) as run: run.stage(…); run.run(argv)`."""

    def __init__(self, target: SshTarget, show: Callable[[str], None],
                 needs_engine: bool = True) -> None:
        self.target = target
        self.show = show
        self.needs_engine = needs_engine
        self.connection: SshConnection | None = None
        self.sftp: paramiko.SFTPClient | None = None
        self.staging = ""
        self.staged: list[Staged] = []
        self.facts: HostFacts | None = None

    def __enter__(self) -> ShippedRun:
        self.connection = connect(self.target.address, self.target.jumps,
                                  load_ssh_config(self.target.ssh_config),
                                  self.target.credentials, self.target.policy, self.show)
        try:
            where = str(self.connection.target)
            facts = self.facts = probe_host(self.connection.transport, where)
            if self.needs_engine:
                require_engine(facts, where)
            self.staging = f"{facts.home.rstrip('/')}/{STAGING}"
            self.sftp = self._open_sftp()
            self._make_staging()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        # Closing a connection that already died must not hide why it died.
        with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
            if self.sftp is not None:
                self.sftp.close()
        with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
            if self.connection is not None:
                self.connection.close()

    @property
    def transport(self) -> paramiko.Transport:
        assert self.connection is not None, "used outside `with`"
        return self.connection.transport

    def _open_sftp(self) -> paramiko.SFTPClient:
        try:
            sftp = paramiko.SFTPClient.from_transport(self.transport,
                                                      window_size=1 << 26,
                                                      max_packet_size=(1 << 18) - 1024)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise HostUnsuitable(f"{self.connection.target} offers no SFTP ({exc}): enable "
                                 "the sftp subsystem in its sshd_config") from None
        assert sftp is not None
        return sftp

    def _make_staging(self) -> None:
        assert self.sftp is not None
        path = ""
        for part in self.staging.strip("/").split("/"):
            path += "/" + part
            try:
                self.sftp.stat(path)
            except FileNotFoundError:
                try:
                    self.sftp.mkdir(path, 0o700)
                except OSError as exc:
                    raise HostUnsuitable(f"cannot create {path} on the host: {exc}") from None
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise ConnectionLost(f"the SSH connection dropped: {exc}") from None

    def stage(self, local: Path, digest: str | None = None) -> Staged:
        """Uploads `local` unless the host already holds it; returns where it is there."""
        assert self.sftp is not None, "used outside `with`"
        size = local.stat().st_size
        assert self.facts is not None
        meter = UploadMeter(f"uploading {local.name}", self.show)
        digest = digest or cached_sha256(local)
        staged = stage_file(self.transport, self.sftp, local, self.staging, digest, meter,
                            free_bytes=self.facts.home_free)
        if staged.already_there:
            self.show(f"{local.name} is on the host already (sha256 {staged.digest[:16]}…)")
        elif size > 1_000_000:
            speed = staged.sent_bytes / max(staged.seconds, 1e-6) / 1e6
            resumed = (f", resumed at {staged.resumed_from / 1e6:.1f} MB"
                       if staged.resumed_from else "")
            self.show(f"uploaded {local.name} ({size / 1e6:.1f} MB{resumed}) in "
                      f"{staged.seconds:.1f}s, {speed:.0f} MB/s, sha256 verified on the host")
        self.staged.append(staged)
        return staged

    def stage_text(self, name: str, data: bytes) -> Staged:
        with tempfile.TemporaryDirectory(prefix="heliostat-") as directory:
            path = Path(directory) / name
            path.write_bytes(data)
            return self.stage(path, sha256_file(path))

    def run(self, zipapp: str, args: list[str]) -> int:
        """Runs the staged zipapp with `args`; its output goes to ours as it comes."""
        assert self.facts is not None, "used outside `with`"
        clock = f"{self.facts.clock_skew:.3f} {self.facts.clock_uncertainty:.3f}"
        command = (f"cd {shlex.quote(self.staging)} && {ON_HOST_VARIABLE}=ssh "
                   f"{WORKSTATION_CLOCK_VARIABLE}={shlex.quote(clock)} "
                   f"PYTHONUNBUFFERED=1 exec python3 {shlex.quote(zipapp)} "
                   + " ".join(shlex.quote(a) for a in args))
        return run_streamed(self.transport, command, sys.stdout.buffer, sys.stderr.buffer)


def lost_connection_hint(verb: str) -> str:
    """What a user does after the session ended early (the host's run ends with it)."""
    if verb in ("install", "upgrade", "rollback", "uninstall"):
        return (f"the run of `{verb}` on the host stopped with it, as a killed local run "
                "would: `heliostat status` shows the pending revision, and `heliostat "
                "upgrade` (or `install`) resumes it")
    return "run the command again"
