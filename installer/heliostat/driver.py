"""The seam between heliostat's target-neutral core and one target (Compose, Kubernetes…).

A driver knows how to read what runs on its target and how to change one object there.
Everything else — planning, dependency waves, health gates, rollback, the release
ledger and its lock — is written once above it (see docs/drivers.md). So this module
holds only the few types both sides speak, and the `Driver` protocol.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, BinaryIO, Literal, Protocol

from heliostat.ledger_store import LedgerStore

Action = Literal["create", "update", "replace", "delete", "unchanged"]
ObservedHealth = Literal["healthy", "starting", "unhealthy", "unknown"]
DEFAULT_HEALTH_TIMEOUT = 300.0  # seconds, for an object whose target sets no bound


def spec_hash(spec: Mapping[str, Any]) -> str:
    """sha256 of the spec's canonical JSON: the same spec always hashes the same."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DataBackup:
    """How to copy an object's data out (`dump` writes it to standard output) and back
    (`restore` reads it from standard input): commands run inside the object."""

    dump: tuple[str, ...]
    restore: tuple[str, ...]


@dataclass(frozen=True)
class DesiredObject:
    """One object the rendered manifests ask for: a container, a Kubernetes object, an app.

    `key` is unique on the target (`kafka-0`, `event-api`, `configmap/event-api`).
    `depends_on` names services, as the neutral model does; the planner layers services
    into waves from it, and every object of a service is in its service's wave.
    `spec` is everything `apply` needs, as plain JSON-able data. `health_timeout` is how
    many seconds its health gate may take (from the target's own health-check settings);
    the core gives `wait` a deadline that far ahead. `backup` is set on the one object of
    a service whose data the core dumps before changing it; it is not part of the spec,
    as changing how a backup is taken does not change the object. `applied_after` names
    objects of the same service this one needs in place first (a Compose sidecar: the main
    container whose network namespace it joins; a Kubernetes workload: the ServiceAccount,
    ConfigMaps and Services of its pods): the core applies and gates the service's other
    objects before the ones with `applied_after`.
    """

    key: str
    service: str
    spec: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT
    backup: DataBackup | None = None
    applied_after: tuple[str, ...] = ()

    @cached_property  # specs are large and a plan asks more than once
    def spec_hash(self) -> str:
        return spec_hash(self.spec)


@dataclass(frozen=True)
class LiveObject:
    """One object as the driver observed it on the target.

    Drivers record `spec_hash`, `revision` and `wave` with the object when they apply it
    (labels, annotations), and read them back in `observe`. `spec` is the spec it was
    applied with when the driver can read that back too; without it the plan can say an
    object changed but not which fields. `wave` orders deletions (0: not recorded).
    """

    key: str
    service: str
    spec_hash: str
    revision: int
    health: ObservedHealth = "unknown"
    wave: int = 0
    spec: dict[str, Any] | None = None


@dataclass(frozen=True)
class PlanStep:
    """One thing to do to one object; `changed` lists dotted paths (`env.KAFKA_BOOTSTRAP`)."""

    action: Action
    key: str
    wave: int
    desired: DesiredObject | None
    live: LiveObject | None
    changed: tuple[str, ...] = ()

    @property
    def service(self) -> str:
        obj = self.desired or self.live
        assert obj is not None, "a step has a desired or a live object"
        return obj.service


class ByteSink(Protocol):
    """Where a command's standard output goes: a binary file, or anything with write()."""

    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class CommandResult:
    """How a command run inside an object ended: its exit code and its last stderr lines."""

    exit_code: int
    stderr: tuple[str, ...] = ()


@dataclass(frozen=True)
class Health:
    """What `wait` found: healthy, or failed with why and the object's last log lines."""

    healthy: bool
    reason: str = ""
    logs: tuple[str, ...] = ()

    @classmethod
    def ok(cls) -> Health:
        return cls(True)

    @classmethod
    def failed(cls, reason: str, logs: tuple[str, ...] = ()) -> Health:
        return cls(False, reason, logs)


class Driver(Protocol):
    """What a target must provide. Each method does one target operation and no policy."""

    # Top-level spec fields the target cannot change in place (a StatefulSet's
    # volumeClaimTemplates, a container's volumes): a change to one plans a replace.
    immutable_fields: frozenset[str]

    def desired_objects(self, manifests: Mapping[str, str]) -> list[DesiredObject]:
        """The objects these manifests describe: file name -> the text `render` writes.

        Taking the written text, not the model, is what makes `render` output exactly
        what `install` applies, and lets `rollback` apply a revision's stored manifests.
        """
        ...

    def observe(self) -> dict[str, LiveObject]:
        """Every object of this platform on the target, by key."""
        ...

    def apply(self, step: PlanStep, revision: int) -> None:
        """Do one create, update, replace or delete, labelling the object with `revision`,
        `step.wave` and the desired spec hash. Returns once the target accepted it;
        health is `wait`'s job. Raises on a target error."""
        ...

    def wait(self, step: PlanStep, deadline: float) -> Health:
        """Until `deadline` (a `time.monotonic()` value): is the applied object healthy?"""
        ...

    def run_in(self, key: str, command: tuple[str, ...], stdin: BinaryIO | None = None,
               stdout: ByteSink | None = None) -> CommandResult:
        """Run `command` inside the live object `key` (`docker exec`, `kubectl exec`),
        streaming `stdin` into it and its standard output into `stdout`. Raises on a
        target error; a command that fails is a result."""
        ...

    def ledger_store(self) -> LedgerStore:
        """Where this target keeps the release ledger and its lock."""
        ...
