"""`heliostat doctor`: can this target take the platform? Each check says what it found,
with figures, and — when it is not ok — what to do about it.

This module is target-neutral: the types, the runner, the rules that turn figures into a
status, and the report. Gathering the figures is a target's job
(`heliostat/drivers/compose_doctor.py` for Docker, `kubernetes_doctor.py` for Kubernetes).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from heliostat.ledger_lock import Lease
    from heliostat.model import PlatformModel

Status = Literal["ok", "warn", "fail"]

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40

# The oldest Engine API the Compose driver is tested on: Docker Engine 20.10, which Debian
# 11 and 12 ship. Podman and others speak the same API under other version numbers, so the
# API version decides, not the engine's own.
MIN_ENGINE_API = (1, 41)
MIN_ENGINE_NAME = "Docker Engine 20.10"

# Kubernetes minors the kubernetes driver supports. The rendered objects use GA APIs only,
# and the driver leans on newer behaviour: the rollout gates find a Job's pods by the
# `batch.kubernetes.io/job-name` label (set from 1.27 on), and `permissions` names the user
# through SelfSubjectReview (GA in 1.28). 1.29 is the oldest heliostat commits to, a minor
# above both; an older cluster is refused rather than left half-working.
MIN_KUBERNETES = (1, 29)
# The newest minor tested: the control plane the test bed runs (tests/infra/steps/
# kubernetes.sh). A newer one most likely works (GA APIs do not change), hence a warning.
NEWEST_TESTED_KUBERNETES = (1, 37)

# Memory: what the services are allowed (the catalog's `resources.memory`, each container's
# memory limit on Compose) against the engine's memory. Above 100 % they may still run (few
# services use all they are allowed), above 200 % even half of it would not fit.
MEMORY_FAIL_RATIO = 2.0

# Disk of the engine's data root. `docker load` unpacks the images into a temporary
# directory of the data root before it registers their layers, so loading takes about
# twice their size at its peak. Headroom: containers' writable layers, their logs (json-file,
# 3 x 10 MB each) and the first data of the volumes.
LOAD_PEAK_FACTOR = 2
DATA_ROOT_HEADROOM = 2 * GiB

# Disk of the state directory: the ledger (every revision keeps its rendered manifests,
# written atomically, so briefly twice), config files and secrets — small, but a full disk
# there stops every command that records a revision.
STATE_DIR_FAIL_BELOW = 64 * MiB
STATE_DIR_WARN_BELOW = 256 * MiB

# Clock skew between this host and the engine: times in container states, logs and TLS
# certificates are the engine's, compared with this host's.
CLOCK_WARN_SECONDS = 2.0
CLOCK_FAIL_SECONDS = 60.0

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)(i?)(B?)", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    """What a check found: its status, one line with the figures, and what to do."""

    status: Status
    text: str
    fix: str = ""

    @classmethod
    def ok(cls, text: str) -> Finding:
        return cls("ok", text)

    @classmethod
    def warn(cls, text: str, fix: str) -> Finding:
        return cls("warn", text, fix)

    @classmethod
    def fail(cls, text: str, fix: str) -> Finding:
        return cls("fail", text, fix)


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    finding: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "finding": self.finding,
                "fix": self.fix}


class CannotCheck(Exception):
    """A check could not gather its figures (the engine is unreachable, say); the runner
    reports it as not checked, with what to do first."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


Probe = Callable[[], Finding]


def run_checks(probes: Iterable[tuple[str, Probe]]) -> list[Check]:
    """Run each probe in order. One that cannot gather its figures is a warning, not a
    failure: whatever stopped it fails a check of its own."""
    checks = []
    for name, probe in probes:
        try:
            found = probe()
        except CannotCheck as exc:
            found = Finding.warn(f"not checked: {exc.reason}", exc.fix)
        checks.append(Check(name, found.status, found.text, found.fix))
    return checks


# -- the seam: which target runs which checks --

class Preflight(Protocol):
    """What a target gives `heliostat doctor`: its checks, gathered read-only.

    `Target.preflight(bundle_file)` gives it. It must work when the target does not
    answer — that is what it reports — so it is not a method of a connected `Driver`
    (a driver is made with a live connection to its target)."""

    # What the report's last line says can take the platform: "this host", "this cluster".
    where: str

    def checks(self) -> list[Check]:
        ...


# Imported only when doctor runs, as the drivers are, so that `--help` stays fast.
# -- the rules --

def engine_version_rule(version: str, api_version: str, where: str) -> Finding:
    found = f"Docker Engine {version} (API {api_version}) reachable at {where}"
    api = _version_tuple(api_version)
    if api is None:
        return Finding.warn(f"{found}; its API version is not one heliostat can read",
                            f"heliostat is tested on Engine API {_dotted(MIN_ENGINE_API)} "
                            f"({MIN_ENGINE_NAME}) and later; use such an engine")
    if api < MIN_ENGINE_API:
        return Finding.fail(f"{found}; heliostat needs Engine API {_dotted(MIN_ENGINE_API)} "
                            f"({MIN_ENGINE_NAME}) or later",
                            f"upgrade the engine to {MIN_ENGINE_NAME} or later (Debian 12: "
                            "`apt-get install docker.io`)")
    return Finding.ok(found)


def kubernetes_version_rule(git_version: str, server: str) -> Finding:
    """`git_version`: the API server's `/version` gitVersion (`v1.37.2`, `v1.30.4-eks-a1b2`)."""
    found = f"Kubernetes {git_version} at {server}"
    version = _version_tuple(git_version.lstrip("v"))
    oldest, newest = _dotted(MIN_KUBERNETES), _dotted(NEWEST_TESTED_KUBERNETES)
    if version is None:
        return Finding.warn(f"{found}; heliostat cannot read that version",
                            f"heliostat supports Kubernetes {oldest} to {newest}; check the "
                            "cluster's version (`kubectl version`)")
    if version < MIN_KUBERNETES:
        return Finding.fail(f"{found}; heliostat needs Kubernetes {oldest} or later",
                            f"upgrade the cluster to Kubernetes {oldest} or later (tested up "
                            f"to {newest})")
    if version > NEWEST_TESTED_KUBERNETES:
        return Finding.warn(f"{found}; newer than {newest}, the newest heliostat is tested on",
                            "it most likely works (heliostat uses GA APIs only); if an "
                            "install misbehaves, use heliostat's newest release")
    return Finding.ok(found)


def memory_rule(requested: int, total: int, containers: int, jobs: int) -> Finding:
    """`requested`: the sum of the long-running containers' memory (their limits). Jobs
    run once and exit, so they are left out of the sum."""
    share = requested / total if total else float("inf")
    found = (f"{containers} containers are allowed {human_bytes(requested)} of memory"
             + (f" ({jobs} job(s) not counted: they run once and exit)" if jobs else "")
             + f"; the engine has {human_bytes(total)} ({share:.0%})")
    fix = ("give the host more memory, or lower `replicas` in platform.yaml, or disable "
           "the modules the platform does not need (`modules.<name>.enabled: false`)")
    if share > MEMORY_FAIL_RATIO:
        return Finding.fail(f"{found}: more than {MEMORY_FAIL_RATIO:.0f}x what it has, so "
                            "the platform cannot run here", fix)
    if share > 1:
        return Finding.warn(f"{found}: more than it has, so containers may be killed for "
                            "memory under load", fix)
    return Finding.ok(found)


def memory_requests(model: PlatformModel) -> tuple[int, int, int]:
    """(bytes requested, containers counted, jobs left out): each long-running service's
    `resources.memory` and its sidecars', times its replicas. A job runs once and exits,
    so it is not counted."""
    requested = containers = jobs = 0
    for service in model.services:
        if service.kind == "job":
            jobs += 1
            continue
        for resources in (service.resources, *(s["resources"] for s in service.sidecars)):
            requested += parse_size(str(resources["memory"])) * service.replicas
            containers += service.replicas
    return requested, containers, jobs


def data_root_rule(root: str, free: int, images_to_load: int, images_of_unknown_size: int,
                   new_volumes: int) -> Finding:
    """Fail below what loading the missing images and a minimum headroom take; warn when
    the volumes the platform creates could not grow to their declared sizes. Declared
    sizes are ceilings the data grows into, not space the engine reserves."""
    needed = LOAD_PEAK_FACTOR * images_to_load + DATA_ROOT_HEADROOM
    found = (f"{root}: {human_bytes(free)} free; needs {human_bytes(needed)} "
             f"({human_bytes(images_to_load)} of images to load, x{LOAD_PEAK_FACTOR} while "
             f"loading, + {human_bytes(DATA_ROOT_HEADROOM)} headroom)")
    if images_of_unknown_size:
        found += f", not counting {images_of_unknown_size} missing image(s) of unknown size"
    if new_volumes:
        found += f"; its new volumes may grow to {human_bytes(new_volumes)}"
    if free < needed:
        return Finding.fail(found, f"free at least {human_bytes(needed - free)} on the "
                            f"filesystem of {root} (`docker system prune` removes unused "
                            "images and stopped containers)")
    if free < needed + new_volumes:
        return Finding.warn(found, f"the volumes can fill {root}: free space, move the "
                            "engine's data-root to a larger disk, or lower the `storage` "
                            "sizes in platform.yaml")
    return Finding.ok(found)


def state_dir_space_rule(directory: str, free: int, note: str = "") -> Finding:
    found = f"{directory}: {human_bytes(free)} free{note}"
    fix = (f"free space on the filesystem of {directory}, or move the state directory "
           "(--state-dir, target.compose.state_dir)")
    if free < STATE_DIR_FAIL_BELOW:
        return Finding.fail(f"{found}; the ledger needs at least "
                            f"{human_bytes(STATE_DIR_FAIL_BELOW)}", fix)
    if free < STATE_DIR_WARN_BELOW:
        return Finding.warn(f"{found}; below {human_bytes(STATE_DIR_WARN_BELOW)}, the "
                            "ledger's revisions may fill it", fix)
    return Finding.ok(found)


def clock_rule(skew: float, uncertainty: float, clock: str = "the engine's clock",
               reference: str = "this host's") -> Finding:
    """`skew`: engine minus this host, in seconds, measured to within `uncertainty` (half
    the round trip of the call that read the engine's time). Judged on what is certain.
    Over SSH, also the Docker host's clock against the workstation's."""
    direction = "ahead of" if skew >= 0 else "behind"
    found = f"{clock} is {abs(skew):.2f}s {direction} {reference} (±{uncertainty:.2f}s)"
    certain = max(0.0, abs(skew) - uncertainty)
    fix = ("synchronise both clocks with NTP (`timedatectl set-ntp true`, chrony): container "
           "ages, log times and TLS certificate checks depend on them")
    if certain > CLOCK_FAIL_SECONDS:
        return Finding.fail(f"{found}: more than {CLOCK_FAIL_SECONDS:.0f}s", fix)
    if certain > CLOCK_WARN_SECONDS:
        return Finding.warn(f"{found}: more than {CLOCK_WARN_SECONDS:.0f}s", fix)
    return Finding.ok(found)


def lease_rule(lease: Lease) -> Finding:
    """Who holds the ledger's lock, from its lease as read without taking the lock: a live
    holder is a warning (a command run now would be refused); one whose lease ran out, or
    that provably no longer runs, is taken over by the next command."""
    holder = lease.holder.describe()
    if lease.expired():
        return Finding.ok(f"not held: the last lease, of {holder}, ran out at "
                          f"{_clock(lease.expires_at)}; the next command takes the lock over")
    if lease.holder.is_gone():
        return Finding.ok(f"not held: its holder {holder} no longer runs; the next command "
                          "takes the lock over")
    left = max(0, round(lease.expires_at - time.time()))
    return Finding.warn(f"held by {holder}; its lease runs out at {_clock(lease.expires_at)} "
                        f"(in {left}s) unless it is renewed",
                        "wait for that command to finish (`heliostat status` shows what it "
                        "applies); if it was killed, its lease runs out by itself and the "
                        "next command takes the lock over")


# -- the report --

EXIT_OK, EXIT_FAILED = 0, 1
_MARKERS = {True: {"ok": "✓", "warn": "!", "fail": "✗"},
            False: {"ok": "ok", "warn": "!!", "fail": "XX"}}


def exit_code(checks: Sequence[Check]) -> int:
    """0 when nothing failed (warnings allowed), 1 otherwise."""
    return EXIT_FAILED if any(c.status == "fail" for c in checks) else EXIT_OK


def report_json(platform: str, checks: Sequence[Check]) -> dict[str, Any]:
    return {"platform": platform, "checks": [c.to_json() for c in checks],
            "ok": exit_code(checks) == EXIT_OK}


def report_text(platform: str, checks: Sequence[Check], unicode: bool = True,
                where: str = "this host") -> str:
    """One line per check (its fix indented below it), then a summary line."""
    markers = _MARKERS[unicode]
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        lines.append(f"{markers[check.status]:>2} {check.name.ljust(width)}  {check.finding}")
        if check.fix:
            lines.append(f"{'':>2} {'':{width}}  fix: {check.fix}")
    lines.append(summary_line(platform, checks, where))
    return "\n".join(lines) + "\n"


def summary_line(platform: str, checks: Sequence[Check], where: str = "this host") -> str:
    count = {status: sum(c.status == status for c in checks) for status in ("ok", "warn", "fail")}
    figures = (f"{count['ok']} ok, {count['warn']} warning{'s' if count['warn'] != 1 else ''}, "
               f"{count['fail']} failed")
    if count["fail"]:
        return (f"platform {platform}: {figures}; fix what failed, then run "
                "`heliostat doctor` again")
    return f"platform {platform}: {figures}; {where} can take it"


# -- figures --

def parse_size(text: str) -> int:
    """Bytes of a size as platform.yaml (`512Mi`, `50Gi`), Compose (`256m`) or the engine
    (`10.74 GB`) writes it: an `i` makes the unit binary, and a bare unit letter is
    binary too, as Compose and Kubernetes read it."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a size: {text!r}")
    number, unit, binary, byte = match.groups()
    base = 1024 if binary or not byte else 1000
    power = " KMGT".index(unit.upper() or " ")
    return int(float(number) * base ** power)


def human_bytes(size: int | float) -> str:
    for unit, factor in (("TiB", TiB), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(size) >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{int(size)} B"


def _version_tuple(text: str) -> tuple[int, ...] | None:
    parts = re.match(r"(\d+)\.(\d+)", text or "")
    return (int(parts[1]), int(parts[2])) if parts else None


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))
