"""The checks of `heliostat doctor` on the Compose target: the Docker engine and this host.

Read-only: nothing here creates, changes or locks anything. The state directory is
looked at, not made; the ledger's lease is read without taking the lock (or its guard,
which would create files); a port is tried by binding it for an instant; a bundle's
manifest is read, not its images.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from heliostat.bundle_check import BundleState, bundle_state
from heliostat.doctor import (
    CannotCheck,
    Check,
    Finding,
    clock_rule,
    data_root_rule,
    engine_version_rule,
    lease_rule,
    memory_requests,
    memory_rule,
    parse_size,
    run_checks,
    state_dir_space_rule,
)
from heliostat.drivers.compose_objects import read_project
from heliostat.ledger_lock import Lease
from heliostat.ledger_store import LEASE, LedgerCorrupt
from heliostat.model import PlatformModel
from heliostat.target import Target

DEFAULT_ENGINE = "unix:///var/run/docker.sock"  # where docker looks without DOCKER_HOST
ENGINE_TIMEOUT = 15  # seconds a call may take: doctor must answer, not hang on a dead engine
PLATFORM_LABEL = "io.heliostat.platform"
SIZE_LABEL = "io.heliostat.size"  # a volume's declared size, as the Compose profile labels it
_ENGINE_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")
_LISTENING = {"tcp": "0A", "udp": "07"}  # socket states in /proc/net/*: LISTEN, unconnected
_ENGINE_TROUBLE = ("run `heliostat doctor` again; if it persists, look at the engine "
                   "(`systemctl status docker`, `journalctl -u docker`)")


@dataclass(frozen=True)
class EngineFacts:
    client: docker.DockerClient
    url: str
    version: dict[str, Any]
    info: dict[str, Any]
    skew: float | None  # engine clock minus ours, seconds; None if it reports no time
    uncertainty: float  # half the round trip of the call that read the engine's time

    @property
    def local(self) -> bool:
        """The engine runs on this host, in its namespaces: its socket is a file here and it
        names itself as this host does (a socket mounted into a container, or forwarded
        from another machine, names another host)."""
        return self.url.startswith("unix://") and self.info.get("Name") == socket.gethostname()


@dataclass(frozen=True)
class ImagePlan:
    present: tuple[str, ...]  # references the engine holds
    from_bundle: tuple[str, ...]  # missing from the engine, carried by the given bundle
    missing: tuple[str, ...]  # in neither
    bytes_to_load: int  # uncompressed layers of `from_bundle` the engine lacks


class ComposeDoctor:
    """Every check for one platform on the engine `DOCKER_HOST` names (else the local one)."""

    where = "this host"

    def __init__(self, target: Target, bundle_file: Path | None = None) -> None:
        self.target = target
        self.bundle_file = bundle_file
        self.from_env = bool(os.environ.get("DOCKER_HOST"))
        self.url = os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE

    def checks(self) -> list[Check]:
        return run_checks([
            ("engine", self.engine_check),
            ("clock", self.clock_check),
            ("memory", self.memory_check),
            ("docker-disk", self.docker_disk_check),
            ("state-disk", self.state_disk_check),
            ("ports", self.ports_check),
            ("bundle", self.bundle_check),
            ("images", self.images_check),
            ("host-folders", self.host_folders_check),
            ("state-dir", lambda: state_dir_finding(self.target.state_dir)),
            ("ledger-lock", lambda: ledger_lock_finding(self.target.state_dir)),
            *self.shipped_checks(),
        ])

    def shipped_checks(self) -> list[tuple[str, Callable[[], Finding]]]:
        """Run on the Docker host by the ssh transport: its python3, and its clock against
        the workstation's (as the transport measured it)."""
        from heliostat.transports.local import shipped_run, workstation_clock

        if not shipped_run():
            return []
        version = ".".join(map(str, sys.version_info[:3]))
        checks = [("python", lambda: Finding.ok(f"python3 {version} ({sys.executable}) runs "
                                                "heliostat on the Docker host"))]
        clock = workstation_clock()
        if clock is not None:
            checks.append(("workstation-clock", lambda: clock_rule(
                clock[0], clock[1], "the Docker host's clock", "the workstation's")))
        return checks

    # -- the engine --

    @cached_property
    def _connection(self) -> tuple[EngineFacts | None, Finding]:
        try:
            # from_env reads DOCKER_HOST and the TLS settings, and agrees an API version
            # with the engine (20.10 speaks 1.41).
            client = docker.from_env(timeout=ENGINE_TIMEOUT)
            version = client.version()
            before = time.time()
            info = client.info()
            after = time.time()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            return None, unreachable(self.url, exc, self.from_env)
        engine_now = engine_time(str(info.get("SystemTime") or ""))
        skew = None if engine_now is None else engine_now - (before + after) / 2
        facts = EngineFacts(client, self.url, version, info, skew, (after - before) / 2)
        return facts, engine_version_rule(str(version.get("Version", "?")),
                                          str(version.get("ApiVersion", "?")), self.url)

    def _engine(self) -> EngineFacts:
        engine, _ = self._connection
        if engine is None:
            raise CannotCheck("it needs the Docker engine, which is unreachable",
                              "make the engine reachable (see the engine check), then run "
                              "`heliostat doctor` again")
        return engine

    def engine_check(self) -> Finding:
        return self._connection[1]

    def clock_check(self) -> Finding:
        engine = self._engine()
        if engine.skew is None:
            raise CannotCheck(f"the engine reports no time heliostat can read "
                              f"({engine.info.get('SystemTime')!r})",
                              "compare `docker info --format '{{.SystemTime}}'` with `date -u`")
        return clock_rule(engine.skew, engine.uncertainty)

    def memory_check(self) -> Finding:
        engine = self._engine()
        total = int(engine.info.get("MemTotal") or 0)
        if total <= 0:
            raise CannotCheck("the engine reports no MemTotal", "look at `docker info`")
        requested, containers, jobs = memory_requests(self.target.model)
        return memory_rule(requested, total, containers, jobs)

    # -- disks --

    def docker_disk_check(self) -> Finding:
        engine = self._engine()
        root = str(engine.info.get("DockerRootDir") or "")
        free = _data_root_free(engine, root)
        images = self._images
        return data_root_rule(root, free, images.bytes_to_load, len(images.missing),
                              self._new_volume_bytes(engine))

    def _new_volume_bytes(self, engine: EngineFacts) -> int:
        """Declared sizes of the volumes an install would create. Those that exist already
        hold their data, which the free space has counted."""
        declared = read_project(self.target.manifests).volumes
        listing = _engine_call("list volumes", engine.client.api.volumes)
        existing = {v["Name"] for v in (listing or {}).get("Volumes") or []}
        return sum(parse_size(labels[SIZE_LABEL]) for name, labels in declared.items()
                   if name not in existing and labels.get(SIZE_LABEL))

    def state_disk_check(self) -> Finding:
        directory = self.target.state_dir
        measured = nearest_existing(directory)
        try:
            figures = os.statvfs(measured)
        except OSError as exc:
            raise CannotCheck(f"cannot measure {measured}: {exc.strerror}",
                              f"run `df -h {measured}`") from None
        note = "" if measured == directory else f" (at {measured}: it does not exist yet)"
        engine, _ = self._connection
        if engine is not None and engine.local and _same_filesystem(
                measured, str(engine.info.get("DockerRootDir") or "")):
            note += ", the filesystem of the Docker data root too"
        return state_dir_space_rule(str(directory), figures.f_bavail * figures.f_frsize, note)

    def host_folders_check(self) -> Finding:
        engine, _ = self._connection
        return host_folders_finding(self.target.model, engine is None or engine.local)

    # -- ports --

    def ports_check(self) -> Finding:
        published = published_ports(self.target.manifests)
        if not published:
            return Finding.ok("the platform publishes no port on the host")
        engine, _ = self._connection
        if engine is not None and not engine.local:
            listing = ", ".join(f"{port}/{protocol}" for port, protocol, _ in published)
            raise CannotCheck(f"the engine is not on this host (it names itself "
                              f"{engine.info.get('Name')!r}), so ports {listing} cannot be "
                              "tried from here",
                              f"check on the engine's host that {listing} are free "
                              "(`ss -ltnup`)")
        held_by_containers = _published_by_containers(engine) if engine is not None else {}
        free, busy = [], []
        for port, protocol, service in published:
            container = held_by_containers.get((port, protocol))
            if container is not None and container[1] == self.target.name:
                free.append(f"{port}/{protocol} ({service}) is held by this platform's own "
                            f"container {container[0]}")
                continue
            if container is not None:
                owner = f" of platform {container[1]}" if container[1] else ""
                busy.append(f"port {port}/{protocol}, which {service} publishes, is held by "
                            f"container {container[0]}{owner}")
                continue
            holder = port_holder(port, protocol)
            if holder is None:
                free.append(f"{port}/{protocol} ({service}) is free")
            else:
                busy.append(f"port {port}/{protocol}, which {service} publishes, is in use "
                            f"by {holder}")
        if busy:
            return Finding.fail("; ".join(busy),
                                "stop what holds it, or publish the platform on another port: "
                                "set `gateway.http_port` in platform.yaml")
        return Finding.ok("; ".join(free))

    # -- bundle and images --

    @cached_property
    def _bundle(self) -> BundleState:
        return bundle_state(self.bundle_file, self.target.model,
                            "the images must be in the engine already")

    def bundle_check(self) -> Finding:
        return self._bundle.finding

    @cached_property
    def _images(self) -> ImagePlan:
        engine = self._engine()
        wanted = platform_images(self.target.model)
        present, layers = [], set()
        for reference in wanted:
            attrs = _inspect_image(engine, reference)
            if attrs is not None:
                present.append(reference)
                layers.update((attrs.get("RootFS") or {}).get("Layers") or [])
        manifest = self._bundle.manifest
        from_bundle, missing, to_load = [], [], {}
        for reference, name in wanted.items():
            if reference in present:
                continue
            image = manifest.image(name) if manifest is not None else None
            # The bundle loads `heliostat/<name>:<version>`; a platform that takes its
            # images from a registry runs other references, which it pulls.
            if image is not None and image.reference == reference:
                from_bundle.append(reference)
                to_load.update({la.diff_id: la.size for la in image.layers
                                if la.diff_id not in layers})
            else:
                missing.append(reference)
        return ImagePlan(tuple(present), tuple(from_bundle), tuple(missing),
                         sum(to_load.values()))

    def images_check(self) -> Finding:
        plan = self._images
        total = len(plan.present) + len(plan.from_bundle) + len(plan.missing)
        if plan.missing:
            settings = self.target.config.values["images"]
            registry, policy = settings["registry"], settings["pull_policy"]
            listing = ", ".join(plan.missing)
            if registry and policy != "Never":
                return Finding.warn(f"{len(plan.missing)} of {total} images are not in the "
                                    f"engine ({listing}); install pulls them from {registry} "
                                    "(doctor does not contact registries)",
                                    f"make sure {registry} serves them, or load them first "
                                    "(`heliostat bundle load FILE`)")
            where = "the given bundle" if self.bundle_file else "a bundle (none given)"
            return Finding.fail(f"{len(plan.missing)} of {total} images the platform runs are "
                                f"neither in the engine nor in {where}: {listing}",
                                "load them into the engine: `heliostat bundle load FILE` (or "
                                "`heliostat install --bundle FILE`); where the sources are, "
                                "`make images` builds them")
        found = f"all {total} images the platform runs are in the engine"
        if plan.from_bundle:
            found = (f"all {total} images the platform runs are available: "
                     f"{len(plan.present)} in the engine, {len(plan.from_bundle)} to load "
                     "from the bundle")
        return Finding.ok(found)


# -- the engine --

def unreachable(url: str, error: Exception, from_env: bool = False) -> Finding:
    """Why the engine at `url` does not answer, as far as this host can tell. `from_env`:
    the url is DOCKER_HOST's, which may be what is wrong."""
    where = f"cannot reach the Docker engine at {url}" + (" (DOCKER_HOST)" if from_env else "")
    elsewhere = (", or unset DOCKER_HOST to use the local engine" if from_env
                 else ", or point DOCKER_HOST at its socket")
    if url.startswith("unix://"):
        path = Path(url[len("unix://"):])
        start = ("start the Docker daemon (`systemctl start docker`, or `dockerd &` where "
                 "there is no systemd)" + elsewhere)
        if not path.exists():
            return Finding.fail(f"{where}: there is no socket at {path}", start)
        if not os.access(path, os.R_OK | os.W_OK):
            return Finding.fail(f"{where}: this user (uid {os.getuid()}) may not use {path}",
                                "add the user to the socket's group (`usermod -aG docker "
                                "$USER`, then log in again), or run as root")
        if _refused(error):
            # The file is there but nothing listens: a daemon that stopped or crashed
            # leaves its socket behind.
            return Finding.fail(f"{where}: nothing listens on {path} (the socket of a daemon "
                                "that is not running?)", start)
        return Finding.fail(f"{where}: the daemon does not answer on {path} "
                            f"({_short(error)})",
                            "is it starting, or hung? `systemctl status docker`, "
                            "`journalctl -u docker`")
    return Finding.fail(f"{where} ({_short(error)})",
                        "check that the host is reachable and its daemon listens there (for "
                        "TLS: DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)"
                        + (elsewhere if from_env else ""))


def _refused(error: BaseException, depth: int = 0) -> bool:
    """Whether a connection refused is behind `error`. docker and requests wrap the OS's
    error in theirs, as a cause or inside their args, several levels deep."""
    if isinstance(error, ConnectionRefusedError):
        return True
    if depth > 6:
        return False
    inner = [error.__cause__, error.__context__,
             *(a for a in error.args if isinstance(a, BaseException))]
    return any(_refused(e, depth + 1) for e in inner if e is not None)


def engine_time(text: str) -> float | None:
    """Seconds since the epoch of the engine's `SystemTime` (RFC 3339, nanoseconds)."""
    match = _ENGINE_TIME.fullmatch(text)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    offset = timezone.utc
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        offset = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=offset)
    return moment.timestamp() + float(f"0.{fraction or 0}")


def _engine_call(what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise CannotCheck(f"the engine failed to {what} ({_short(exc)})",
                          _ENGINE_TROUBLE) from None


def _inspect_image(engine: EngineFacts, reference: str) -> dict[str, Any] | None:
    try:
        return engine.client.api.inspect_image(reference)
    except docker.errors.ImageNotFound:
        return None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise CannotCheck(f"the engine failed to inspect image {reference} ({_short(exc)})",
                          _ENGINE_TROUBLE) from None


def _short(error: Exception) -> str:
    text = str(error.explanation if isinstance(error, docker.errors.APIError)
               and error.explanation else error)
    return text if len(text) <= 200 else text[:197] + "..."


# -- disks --

def nearest_existing(path: Path) -> Path:
    """`path`, or the closest of its parents that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _data_root_free(engine: EngineFacts, root: str) -> int:
    if engine.local:
        try:
            figures = os.statvfs(root)
        except OSError as exc:
            raise CannotCheck(f"cannot measure the Docker data root {root}: {exc.strerror}",
                              f"run `df -h {root}`") from None
        return figures.f_bavail * figures.f_frsize
    # A remote engine: only a storage driver with its own pool (devicemapper) reports it.
    for key, value in engine.info.get("DriverStatus") or []:
        if key == "Data Space Available":
            return parse_size(value)
    raise CannotCheck(f"the engine is not on this host (it names itself "
                      f"{engine.info.get('Name')!r}), so the free space of its data root "
                      f"{root} cannot be measured from here",
                      f"run `df -h {root}` on the engine's host")


def _same_filesystem(path: Path, other: str) -> bool:
    try:
        return bool(other) and os.stat(path).st_dev == os.stat(other).st_dev
    except OSError:
        return False


# -- ports --

def published_ports(manifests: Mapping[str, str]) -> list[tuple[int, str, str]]:
    """(port, protocol, service) for every host port the rendered compose file publishes."""
    found: dict[tuple[int, str], str] = {}
    for item in read_project(manifests).objects:
        for port in item.spec["ports"]:
            found.setdefault((port["published"], port["protocol"]), item.service)
    return [(port, protocol, service) for (port, protocol), service in sorted(found.items())]


def _published_by_containers(engine: EngineFacts) -> dict[tuple[int, str], tuple[str, str]]:
    """(port, protocol) -> (container name, its heliostat platform or "") of every running
    container that publishes a host port."""
    held = {}
    for summary in _engine_call("list containers", engine.client.api.containers) or []:
        name = (summary.get("Names") or ["?"])[0].lstrip("/")
        platform = (summary.get("Labels") or {}).get(PLATFORM_LABEL, "")
        for port in summary.get("Ports") or []:
            if port.get("PublicPort"):
                held[(int(port["PublicPort"]), str(port.get("Type", "tcp")))] = (name, platform)
    return held


def port_holder(port: int, protocol: str) -> str | None:
    """None if `port` is free on every address of this host; else who holds it, as far as
    this user can see."""
    problem = _try_bind(port, protocol)
    if problem is None:
        return None
    if problem.errno == errno.EACCES:  # a privileged port, and we are not root: ask /proc
        if not _sockets_on(port, protocol):
            return None
    elif problem.errno != errno.EADDRINUSE:
        raise CannotCheck(f"cannot try port {port}/{protocol}: {problem.strerror}",
                          f"check by hand that it is free (`ss -ltnup | grep :{port}`)")
    processes = _processes_holding(_sockets_on(port, protocol))
    if processes:
        return ", ".join(processes)
    return "a process this user cannot see (`ss -ltnup` as root names it)"


def _try_bind(port: int, protocol: str) -> OSError | None:
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        # As the engine's port proxy binds: a connection of a stopped container that
        # lingers in TIME_WAIT does not keep the port from it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError as exc:
            return exc
    return None


def _sockets_on(port: int, protocol: str) -> set[str]:
    """Inodes of the sockets listening on `port` (IPv4 and IPv6), from /proc/net."""
    inodes = set()
    for table in (Path(f"/proc/net/{protocol}"), Path(f"/proc/net/{protocol}6")):
        try:
            rows = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if (len(fields) > 9 and fields[3] == _LISTENING.get(protocol)
                    and int(fields[1].rsplit(":", 1)[1], 16) == port):
                inodes.add(fields[9])
    return inodes


def _processes_holding(inodes: set[str], at_most: int = 3) -> list[str]:
    wanted = {f"socket:[{inode}]" for inode in inodes}
    found: list[str] = []
    if not wanted:
        return found
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            descriptors = os.listdir(f"/proc/{entry.name}/fd")
        except OSError:  # another user's process, or gone meanwhile
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(f"/proc/{entry.name}/fd/{descriptor}")
            except OSError:
                continue
            if target in wanted:
                found.append(_describe_process(int(entry.name)))
                break
        if len(found) >= at_most:
            break
    return found


def _describe_process(pid: int) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        command = b" ".join(w for w in words if w).decode("utf-8", "replace")
    except OSError:
        command = ""
    if len(command) > 80:
        command = command[:77] + "..."
    return f"pid {pid} ({command or '?'})"


# -- bundle and images --

def platform_images(model: PlatformModel) -> dict[str, str]:
    """reference -> logical image name, of every container the platform runs."""
    images = {}
    for service in model.services:
        images[service.image_ref] = service.image
        for sidecar in service.sidecars:
            images[sidecar["image_ref"]] = sidecar["image"]
    return dict(sorted(images.items()))


# -- the state directory and the lock --

def host_folders_finding(model: PlatformModel, engine_is_here: bool) -> Finding:
    """The folders of this host the platform mounts (`host_folder` settings): there, and
    directories. The engine refuses to start a container whose bind source is missing."""
    folders = sorted({(h["host_path"], s.name) for s in model.services
                      for h in s.host_folders})
    if not folders:
        return Finding.ok("the platform mounts no folder of the host")
    paths = sorted({path for path, _ in folders})
    if not engine_is_here:
        return Finding.warn(f"{', '.join(paths)} must exist on the engine's host, which is "
                            "not this one: not checked",
                            "run `heliostat doctor` on the engine's host (or over ssh://)")
    missing = [(path, service) for path, service in folders if not Path(path).is_dir()]
    if missing:
        named = sorted({path for path, _ in missing})
        services = sorted({service for _, service in missing})
        return Finding.fail(f"not a directory on this host: {', '.join(named)} (mounted by "
                            f"{', '.join(services)})",
                            f"create it (`mkdir -p {named[0]}`) or change the `host_folder` "
                            "setting in platform.yaml")
    return Finding.ok(f"{', '.join(paths)}: there, mounted read-only")


def state_dir_finding(directory: Path) -> Finding:
    uid = os.getuid()
    elsewhere = ("run as the user heliostat installs as (root: the directory holds the "
                 "platform's secrets), or choose another with --state-dir or "
                 "target.compose.state_dir")
    if not directory.exists():
        parent = nearest_existing(directory)
        if not parent.is_dir():
            return Finding.fail(f"cannot create {directory}: {parent} is not a directory",
                                elsewhere)
        if not os.access(parent, os.W_OK | os.X_OK):
            return Finding.fail(f"cannot create {directory}: {parent} is not writable by "
                                f"uid {uid}", elsewhere)
        return Finding.ok(f"{directory} does not exist yet; heliostat creates it (mode 0700) "
                          f"in {parent}, which uid {uid} may write")
    if not directory.is_dir():
        return Finding.fail(f"{directory} is not a directory", elsewhere)
    if not os.access(directory, os.W_OK | os.X_OK):
        return Finding.fail(f"{directory} is not writable by uid {uid}", elsewhere)
    loose_dirs, exposed, secrets = _loose_permissions(directory)
    if exposed:
        return Finding.fail(f"secret file(s) others may read: {_with_modes(exposed)}",
                            f"chmod 600 {' '.join(str(p) for p, _ in exposed)}")
    if loose_dirs:
        return Finding.warn(f"{directory} is writable, but others may enter "
                            f"{_with_modes(loose_dirs)}; it holds the platform's secrets",
                            f"chmod 700 {' '.join(str(p) for p, _ in loose_dirs)}")
    return Finding.ok(f"{directory}: writable by uid {uid}, mode 0700"
                      + (f", {secrets} secret file(s) all 0600" if secrets else ""))


Modes = list[tuple[Path, int]]


def _loose_permissions(directory: Path) -> tuple[Modes, Modes, int]:
    """(directories others may enter, secret files others may read, secret files seen)."""
    loose: Modes = []
    exposed: Modes = []
    secrets = 0
    directories = [directory, directory / "secrets"]
    with contextlib.suppress(OSError):  # an unreadable secrets/ shows as its own mode
        directories += sorted(p for p in (directory / "secrets").glob("uid-*") if p.is_dir())
    for path in directories:
        mode = _mode(path)
        if mode is not None and mode & 0o077:
            loose.append((path, mode))
    for folder in directories[1:]:
        try:
            files = sorted(p for p in folder.iterdir() if p.is_file())
        except OSError:
            continue
        for file in files:
            secrets += 1
            mode = _mode(file)
            if mode is not None and mode & 0o077:
                exposed.append((file, mode))
    return loose, exposed, secrets


def _with_modes(paths: Modes) -> str:
    return ", ".join(f"{path} (mode {mode:04o})" for path, mode in paths)


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.lstat().st_mode)
    except OSError:
        return None


def ledger_lock_finding(directory: Path) -> Finding:
    """Who holds the ledger's lock, read from its lease file without taking the lock."""
    path = directory / LEASE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Finding.ok(f"not held (no lease in {directory})")
    except OSError as exc:
        raise CannotCheck(f"cannot read {path}: {exc.strerror}",
                          "run as the user heliostat installs as") from None
    try:
        lease = Lease.from_json(json.loads(data))
    except (ValueError, KeyError, TypeError) as exc:
        return Finding.fail(str(LedgerCorrupt(path, str(exc))),
                            f"if no heliostat command is running, remove it (`rm {path}`)")
    return lease_rule(lease)
