"""The Compose driver: the rendered Compose file applied through the Docker Engine API.

One object is one container, named `<platform>-<key>` and labelled with its platform,
service, key, revision, wave, spec hash and spec. What a container needs is made on
the way: the platform's network, its named volumes (kept when containers go), its
config files and its secrets as files under the platform's state directory.

How a container changes (docs/drivers.md leaves that to the driver):
- a stateless service whose update order is start-first and that publishes no host port
  is swapped the way Kamal and docker-rollout do it: `apply` starts `<name>-next` beside
  the old container, both answering to the service's DNS alias; `wait` waits for it to be
  healthy, lets both serve until the gateway (which resolves service names at request
  time) knows the new address, then stops the old one (SIGTERM, graceful) and renames the
  new one into its place. If it never becomes healthy, `wait` removes it and the old one
  keeps serving;
- anything else (stateful replicas, jobs, published ports, stop-first) is replaced in
  place: stop and remove the old container, create the new one on the same volumes.

Every step is idempotent, so an interrupted apply can simply be run again: a container
that already has the desired spec hash is left alone, a half-done swap is finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import docker
import docker.errors
import docker.types
from docker.models.containers import Container

from heliostat.driver import (
    ByteSink,
    CommandResult,
    DesiredObject,
    Health,
    LiveObject,
    ObservedHealth,
    PlanStep,
)
from heliostat.drivers import compose_files
from heliostat.drivers.compose_engine import Engine, container_health
from heliostat.drivers.compose_errors import EngineError
from heliostat.drivers.compose_objects import ComposeFileError, read_project
from heliostat.ledger_store import FileLedgerStore

PLATFORM_LABEL = "io.heliostat.platform"
SERVICE_LABEL = "io.heliostat.service"
KEY_LABEL = "io.heliostat.key"
REVISION_LABEL = "io.heliostat.revision"
WAVE_LABEL = "io.heliostat.wave"
HASH_LABEL = "io.heliostat.spec-hash"
SPEC_LABEL = "io.heliostat.spec"
NEXT = "-next"  # suffix of the container a swap starts beside the old one
NEXT_KEY = "+next"  # how observe() shows such a container, so a plan can remove a stray one
CRASH_LOOP = 3  # restarts during a health gate that mean the container cannot start
PROBE_SECONDS = 1.0  # between our own runs of a container's health check during its gate
LOG_LINES = 20
STOP_TIMEOUT = 30  # seconds a container gets to finish its requests after SIGTERM
# Seconds the new and the old container of a swap serve side by side before the old one
# stops: the gateway caches DNS answers for 10s (`resolver ... valid=10s` in
# bundles/core/files/nginx.conf.j2), so by then it knows the new address too, and a
# refused connection to the stopping one is retried there.
ROTATION_SECONDS = 11.0


class ComposeDriver:
    """`heliostat.driver.Driver` for one platform on one Docker engine."""

    # A published host port or a volume cannot be held by two containers at once, so a
    # change to them replaces (stop, then start) rather than swapping.
    immutable_fields = frozenset({"ports", "mounts", "hostname", "network_mode"})

    def __init__(self, platform: str, state_dir: Path, client: docker.DockerClient,
                 rotation_seconds: float = ROTATION_SECONDS) -> None:
        self.platform = platform
        self.state_dir = Path(state_dir)
        self.engine = Engine(client)
        self.rotation_seconds = rotation_seconds

    # -- the Driver protocol --

    def desired_objects(self, manifests: Mapping[str, str]) -> list[DesiredObject]:
        project = read_project(manifests)
        if project.name and project.name != self.platform:
            raise ComposeFileError(f"the manifests are platform {project.name}'s, "
                                   f"not {self.platform}'s")
        return list(project.objects)

    def observe(self) -> dict[str, LiveObject]:
        live = {}
        for key, container in self.live_containers().items():
            found = _live_object(key, container)
            # As in a gate: a check that passes now means healthy, though Docker has
            # not run it yet (its first run is one interval after the start).
            if (found.health == "starting" and found.spec and found.spec["kind"] != "job"
                    and container.status == "running"
                    and self.engine.probe(container, found.spec["healthcheck"])):
                found = dataclasses.replace(found, health="healthy")
            live[key] = found
        return live

    def apply(self, step: PlanStep, revision: int) -> None:
        if step.action == "delete":
            self._delete(step.key)
            return
        if step.action == "unchanged":
            return
        desired = step.desired
        assert desired is not None, "only a deletion has no desired object"
        self._prepare(desired)
        labels = self._labels(desired, revision, step.wave)
        name = self._name(desired.key)
        current = self.engine.container(name)
        following = self.engine.container(name + NEXT)
        if current is not None and _hash(current) == desired.spec_hash:
            self._discard(following)  # a swap to another spec was interrupted
            _ensure_started(self.engine, current)
            return
        if current is None and following is not None and _hash(following) == desired.spec_hash:
            self.engine.rename(following, name)  # a swap was cut off after the old one went
            _ensure_started(self.engine, following)
            return
        if (step.action == "update" and current is not None and current.status == "running"
                and _swappable(desired.spec)):
            if following is not None and _hash(following) == desired.spec_hash:
                _ensure_started(self.engine, following)
                return
            self._discard(following)
            self._run(name + NEXT, desired, labels)
            return
        self._discard(following)
        if current is not None:
            # Sidecars in its network namespace go first; their own steps recreate them.
            for sharer in self._sharing_network_of(current):
                self.engine.stop_and_remove(sharer, STOP_TIMEOUT)
            self.engine.stop_and_remove(current, STOP_TIMEOUT)
        self._run(name, desired, labels)

    def wait(self, step: PlanStep, deadline: float) -> Health:
        if step.action == "delete" or step.desired is None:
            return Health.ok()
        desired = step.desired
        name = self._name(desired.key)
        following = self.engine.container(name + NEXT)
        swapping = following is not None and _hash(following) == desired.spec_hash
        container = following if swapping else self.engine.container(name)
        if container is None:
            return Health.failed(f"container {name} does not exist")
        _ensure_started(self.engine, container)  # an apply cut off between create and start
        health = self._gate(container, desired, deadline)
        if not health.healthy:
            if swapping:
                self._discard(container)  # the old container keeps serving
            return health
        if swapping:
            old = self.engine.container(name)
            if old is not None:
                time.sleep(self.rotation_seconds)
                self.engine.stop_and_remove(old, STOP_TIMEOUT)
            self.engine.rename(container, name)
        return health

    def run_in(self, key: str, command: tuple[str, ...], stdin: BinaryIO | None = None,
               stdout: ByteSink | None = None) -> CommandResult:
        container = self.engine.container(self._name(key))
        if container is None or container.status != "running":
            raise EngineError(f"container {self._name(key)} is not running, so "
                              f"{command[0]} cannot run in it")
        exit_code, stderr = self.engine.exec_streaming(container, command, stdin, stdout)
        return CommandResult(exit_code, stderr)

    def ledger_store(self) -> FileLedgerStore:
        return FileLedgerStore(self.state_dir)

    # -- beyond the protocol: for status and uninstall --

    def service_rows(self, desired: list[DesiredObject],
                     live: dict[str, LiveObject]) -> list[dict[str, Any]]:
        """`heliostat status`'s row per service: its containers, ready of desired."""
        from heliostat.service_status import service_rows

        return service_rows(desired, self.live_containers(), live)

    def live_containers(self) -> dict[str, Container]:
        """Every container of this platform that heliostat made, by the key observe() uses."""
        live = {}
        for container in self._containers():
            key = self._observed_key(container)
            if key is not None:
                live[key] = container
        return live

    def remove_platform_objects(self, purge: bool) -> list[str]:
        """The network and config files go; volumes, secrets and the ledger only with
        `purge`.
        Containers are removed by an ordinary plan (uninstall applies empty manifests)."""
        removed = []
        for container in self._containers():  # strays a plan could not name
            self.engine.stop_and_remove(container, STOP_TIMEOUT)
            removed.append(f"container {container.name}")
        for network in self.engine.client.networks.list(
                filters={"label": f"{PLATFORM_LABEL}={self.platform}"}):
            self.engine.remove_network(network.name)
            removed.append(f"network {network.name}")
        compose_files.remove_configs(self.state_dir)
        if purge:
            for volume in self.engine.volumes({PLATFORM_LABEL: self.platform}):
                self.engine.remove_volume(volume)
                removed.append(f"volume {volume}")
            shutil.rmtree(self.state_dir, ignore_errors=True)  # the secrets and the ledger
            removed.append(str(self.state_dir))
        return removed

    # -- helpers --

    def _name(self, key: str) -> str:
        return f"{self.platform}-{key}"

    def _containers(self) -> list[Container]:
        return self.engine.containers({PLATFORM_LABEL: self.platform, KEY_LABEL: ""})

    def _observed_key(self, container: Container) -> str | None:
        key = container.labels.get(KEY_LABEL)
        if not key:
            return None
        if container.name == self._name(key):
            return key
        if container.name == self._name(key) + NEXT:
            return key + NEXT_KEY
        return f"{key}+{container.name}"  # renamed by hand: listed so a plan deletes it

    def _sharing_network_of(self, container: Container) -> list[Container]:
        mode = f"container:{container.id}"
        return [c for c in self._containers()
                if (c.attrs.get("HostConfig") or {}).get("NetworkMode") == mode]

    def _delete(self, key: str) -> None:
        base, _, suffix = key.partition("+")
        if not suffix:
            name = self._name(key)
        elif suffix == NEXT_KEY[1:]:
            name = self._name(base) + NEXT
        else:
            name = suffix
        container = self.engine.container(name)
        if container is not None:
            self.engine.stop_and_remove(container, STOP_TIMEOUT)

    def _discard(self, container: Container | None) -> None:
        if container is not None:
            self.engine.stop_and_remove(container, timeout=5)

    def _labels(self, desired: DesiredObject, revision: int, wave: int) -> dict[str, str]:
        return {**desired.spec["labels"], PLATFORM_LABEL: self.platform,
                SERVICE_LABEL: desired.service, KEY_LABEL: desired.key,
                REVISION_LABEL: str(revision), WAVE_LABEL: str(wave),
                HASH_LABEL: desired.spec_hash,
                SPEC_LABEL: json.dumps(desired.spec, sort_keys=True, separators=(",", ":"))}

    def _prepare(self, desired: DesiredObject) -> None:
        """Network, volumes, image, config and secret files: what the container needs."""
        spec = desired.spec
        for network, settings in spec["networks"].items():
            self.engine.ensure_network(network, settings["labels"])
        for mount in spec["mounts"]:
            if mount["type"] == "volume":
                self.engine.ensure_volume(mount["source"], mount["labels"])
        self.engine.ensure_image(spec["image"], spec["pull_policy"])

    def _run(self, name: str, desired: DesiredObject, labels: dict[str, str]) -> None:
        spec = dict(desired.spec)
        mounts = [docker.types.Mount(m["target"], m["source"], type=m["type"],
                                     read_only=m["read_only"]) for m in spec["mounts"]]
        for config in spec["configs"]:
            path = compose_files.write_config(self.state_dir, config)
            mounts.append(docker.types.Mount(config["target"], str(path), type="bind",
                                             read_only=True))
        if spec["secrets"]:
            uid, gid = self.engine.image_user(spec["image"])
            for secret in spec["secrets"]:
                path = compose_files.secret_for_user(Path(secret["file"]), uid, gid)
                mounts.append(docker.types.Mount(secret["target"], str(path), type="bind",
                                                 read_only=True))
        if spec["network_mode"]:
            main = self.engine.container(self._name(spec["network_mode"]["key"]))
            if main is None:
                raise EngineError(f"{name} shares the network of "
                                  f"{self._name(spec['network_mode']['key'])}, which is not "
                                  "running")
            spec["network_mode"] = f"container:{main.id}"
        self.engine.run_container(name, spec, labels, mounts)

    def _gate(self, container: Container, desired: DesiredObject, deadline: float) -> Health:
        """Healthy (its check passes; a job exited 0) by `deadline`, or why not."""
        is_job = desired.spec["kind"] == "job"
        next_probe = 0.0
        while True:
            try:
                container.reload()
            except docker.errors.NotFound:
                return Health.failed(f"container {container.name} was removed")
            health = container_health(container)
            restarts = int(container.attrs.get("RestartCount") or 0)
            if health.startswith("exited:"):
                code = int(health.partition(":")[2])
                if is_job and code == 0:
                    return Health.ok()
                if is_job or desired.spec["restart"] == "no":
                    return self._failed(container, f"exited with code {code}")
            elif health == "healthy" and not is_job:
                return Health.ok()
            elif health == "unhealthy" and container.status != "restarting":
                return self._failed(container, "its health check keeps failing")
            elif (health == "starting" and not is_job and container.status == "running"
                  and time.monotonic() >= next_probe):
                # Docker runs a check first one interval after the start (10s on the
                # platform); running the same check ourselves, once a second, lets the
                # gate pass as soon as it would pass. Only Docker's verdict fails it.
                next_probe = time.monotonic() + PROBE_SECONDS
                if self.engine.probe(container, desired.spec["healthcheck"]):
                    return Health.ok()
            if restarts >= CRASH_LOOP:
                return self._failed(container, f"keeps crashing ({restarts} restarts)")
            if time.monotonic() >= deadline:
                what = "did not complete" if is_job else "was not healthy"
                return self._failed(container, f"{what} within "
                                               f"{round(desired.health_timeout)}s")
            time.sleep(0.5)

    def _failed(self, container: Container, reason: str) -> Health:
        checks = ((container.attrs.get("State") or {}).get("Health") or {}).get("Log") or []
        # The last line: a failing probe's error, not the traceback leading to it.
        output = str(checks[-1].get("Output") or "").strip().splitlines() if checks else []
        said = output[-1].strip()[:200] if output else ""
        if said:
            reason += f" (its last check said: {said})"
        return Health.failed(f"container {container.name} {reason}",
                             self.engine.logs(container, LOG_LINES))


def _live_object(key: str, container: Container) -> LiveObject:
    labels = container.labels
    spec = None
    with contextlib.suppress(KeyError, ValueError):
        spec = json.loads(labels[SPEC_LABEL])
    return LiveObject(key=key, service=labels.get(SERVICE_LABEL, key),
                      spec_hash=labels.get(HASH_LABEL, ""),
                      revision=_int(labels.get(REVISION_LABEL)),
                      health=_observed_health(container, (spec or {}).get("kind")),
                      wave=_int(labels.get(WAVE_LABEL)), spec=spec)


def _observed_health(container: Container, kind: str | None) -> ObservedHealth:
    health = container_health(container)
    if health.startswith("exited:"):
        return "healthy" if kind == "job" and health == "exited:0" else "unhealthy"
    if kind == "job":
        return "starting"  # still running
    return health if health in ("healthy", "starting", "unhealthy") else "unknown"  # type: ignore[return-value]


def _hash(container: Container) -> str:
    return container.labels.get(HASH_LABEL, "")


def _swappable(spec: Mapping[str, Any]) -> bool:
    return (spec["kind"] == "stateless" and spec["update_order"] == "start-first"
            and not spec["ports"])


def _ensure_started(engine: Engine, container: Container) -> None:
    """Start a container that was created but not started; a job that ran stays done."""
    if container.status == "created":
        engine.start(container)


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
