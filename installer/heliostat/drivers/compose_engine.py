"""The Docker Engine calls of the Compose driver: one container, network or volume at a time.

Everything goes through the Engine API (the `docker` package); nothing shells out to a
`docker` or `docker compose` binary, so a host needs only its engine.
"""

from __future__ import annotations

import contextlib
import io
import socket
import tarfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import docker
import docker.errors
import docker.types
import docker.utils.socket
import requests
from docker.models.containers import Container

from heliostat.driver import ByteSink
from heliostat.drivers.compose_errors import EngineError
from heliostat.drivers.compose_objects import duration_seconds

POOL = 64  # engine connections at most


def connect(base_url: str | None = None) -> docker.DockerClient:
    """A client of the local engine (DOCKER_HOST, else its socket), or EngineError."""
    try:
        # A connection per thread of a wide wave, rather than urllib3 warning that its
        # pool of 10 is full.
        client = (docker.DockerClient(base_url=base_url, timeout=120, max_pool_size=POOL)
                  if base_url else docker.from_env(timeout=120, max_pool_size=POOL))
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot reach the Docker engine ({exc}); is dockerd running, and "
                          "may this user use its socket?") from None
    return client


class Engine:
    """The few engine operations the driver needs, with errors made readable."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self._create_lock = threading.Lock()  # parallel waves share networks and volumes
        self._users: dict[str, tuple[int, int]] = {}

    # -- networks and volumes: created once, shared by the containers of a platform --

    def ensure_network(self, name: str, labels: Mapping[str, str]) -> None:
        with self._create_lock:
            if self._call(f"look up network {name}", self.client.networks.list, names=[name]):
                return
            self._call(f"create network {name}", self.client.networks.create, name,
                       driver="bridge", labels=dict(labels), check_duplicate=True)

    def ensure_volume(self, name: str, labels: Mapping[str, str]) -> None:
        with self._create_lock:
            try:
                self.client.volumes.get(name)
            except docker.errors.NotFound:
                self._call(f"create volume {name}", self.client.volumes.create, name,
                           labels=dict(labels))

    def remove_network(self, name: str) -> None:
        for network in self.client.networks.list(names=[name]):
            with contextlib.suppress(docker.errors.NotFound):
                self._call(f"remove network {name}", network.remove)

    def volumes(self, labels: Mapping[str, str]) -> list[str]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        return sorted(v.name for v in self.client.volumes.list(filters=filters))

    def remove_volume(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._call(f"remove volume {name}", self.client.volumes.get(name).remove, force=True)

    # -- containers --

    def containers(self, labels: Mapping[str, str]) -> list[Container]:
        filters = {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}
        summaries = self._call("list containers", self.client.api.containers, all=True,
                               filters=filters)
        found = []
        for summary in summaries:
            container = self.container(summary["Id"])
            if container is not None:  # None: removed since the listing (a parallel step)
                found.append(container)
        return found

    def container(self, name: str) -> Container | None:
        try:
            return self.client.containers.get(name)
        except docker.errors.NotFound:
            return None
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise EngineError(f"could not inspect container {name}: {_explain(exc)}") from None

    def ensure_image(self, reference: str, pull_policy: str) -> None:
        """The image is in the engine: loaded from the bundle, or pulled if allowed."""
        if pull_policy != "always":
            try:
                self.client.images.get(reference)
                return
            except docker.errors.ImageNotFound:
                pass
        if pull_policy == "never":
            raise EngineError(f"image {reference} is not in the engine and its pull policy is "
                              "`never`: load the bundle first (`install --bundle FILE`)")
        try:
            self.client.images.pull(reference)
        except docker.errors.DockerException as exc:
            raise EngineError(f"image {reference} is not in the engine and cannot be pulled "
                              f"({_explain(exc)}); load the bundle that carries it") from None

    def image_user(self, reference: str) -> tuple[int, int]:
        """uid and gid the image's process runs as, so its secret files can be its own.
        A user name is looked up in the image's /etc/passwd, read without running it."""
        image = self._call(f"inspect image {reference}", self.client.images.get, reference)
        if image.id in self._users:
            return self._users[image.id]
        user = (image.attrs.get("Config") or {}).get("User") or "0"
        name, _, group = user.partition(":")
        ids: tuple[int, int]
        if name.isdigit():
            ids = (int(name), int(group) if group.isdigit() else int(name))
        else:
            ids = self._lookup_user(reference, name)
        self._users[image.id] = ids
        return ids

    def _lookup_user(self, reference: str, name: str) -> tuple[int, int]:
        container = self._call(f"read /etc/passwd of {reference}", self.client.containers.create,
                               reference, entrypoint=["/nonexistent"], network_mode="none")
        try:
            stream, _ = container.get_archive("/etc/passwd")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                member = archive.extractfile(archive.getmembers()[0])
                passwd = member.read().decode() if member else ""
        finally:
            container.remove(force=True)
        for line in passwd.splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == name:
                return int(fields[2]), int(fields[3])
        raise EngineError(f"image {reference} runs as user {name}, who is not in its /etc/passwd")

    def run_container(self, name: str, spec: Mapping[str, Any], labels: Mapping[str, str],
                      mounts: list[docker.types.Mount]) -> Container:
        """Create and start one container from a spec of compose_objects."""
        options: dict[str, Any] = {
            "name": name,
            "command": spec["command"],
            "hostname": spec["hostname"],
            "environment": dict(spec["environment"]),
            "labels": dict(labels),
            "mounts": mounts,
            "detach": True,
            "restart_policy": _restart_policy(spec["restart"]),
            "log_config": docker.types.LogConfig(type="json-file",
                                                 config={"max-size": "10m", "max-file": "3"}),
        }
        if spec["healthcheck"]:
            options["healthcheck"] = healthcheck(spec["healthcheck"])
        if spec["cpus"]:
            options["nano_cpus"] = int(spec["cpus"] * 1e9)
        if spec["memory"]:
            options["mem_limit"] = spec["memory"]
        if spec["ports"]:
            options["ports"] = {f"{p['target']}/{p['protocol']}": p["published"]
                                for p in spec["ports"]}
        networks = list(spec["networks"].items())
        if spec["network_mode"]:
            options["network_mode"] = spec["network_mode"]
        elif networks:
            first, settings = networks[0]
            options["network"] = first
            options["networking_config"] = {first: self.client.api.create_endpoint_config(
                aliases=settings["aliases"])}
        container = self._call(f"create container {name}", self.client.containers.create,
                               spec["image"], **options)
        try:
            for network, settings in networks[1:]:
                self._call(f"connect {name} to {network}",
                           self.client.networks.get(network).connect, container,
                           aliases=settings["aliases"])
            self._call(f"start container {name}", container.start)
        except EngineError:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
            raise
        return container

    def stop_and_remove(self, container: Container, timeout: int = 30) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after `timeout`), then remove; keeps
        named volumes, which outlive their containers."""
        with contextlib.suppress(docker.errors.NotFound):
            if container.status in ("running", "restarting", "paused"):
                self._call(f"stop container {container.name}", container.stop, timeout=timeout)
            self._call(f"remove container {container.name}", container.remove, force=True)

    def probe(self, container: Container, check: Mapping[str, Any] | None) -> bool:
        """Run the container's health check once, inside it: does it pass now?"""
        test = list((check or {}).get("test") or [])
        if not test or test[0] == "NONE":
            return False
        command = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
        try:
            result = container.exec_run(command)
        except (docker.errors.DockerException, requests.RequestException):
            return False  # stopped meanwhile, say: Docker's own state tells
        return result.exit_code == 0

    def exec_streaming(self, container: Container, command: Sequence[str],
                       stdin: BinaryIO | None, stdout: ByteSink | None,
                       chunk: int = 1 << 20) -> tuple[int, tuple[str, ...]]:
        """`docker exec -i`: `stdin` streamed in (then closed, so the command sees its end),
        standard output streamed into `stdout`, neither held in memory. Returns the exit
        code and the last lines of standard error."""
        what = f"run {command[0]} in container {container.name}"
        api = self.client.api
        created = self._call(what, api.exec_create, container.id, list(command),
                             stdin=stdin is not None, stdout=True, stderr=True)
        connection = self._call(what, api.exec_start, created["Id"], socket=True)
        raw = getattr(connection, "_sock", connection)
        errors: deque[bytes] = deque(maxlen=64)
        feeding: list[BaseException] = []

        def feed() -> None:
            try:
                assert stdin is not None
                while data := stdin.read(chunk):
                    raw.sendall(data)
            except BaseException as exc:  # reported after the output is read
                feeding.append(exc)
            finally:
                with contextlib.suppress(OSError):
                    raw.shutdown(socket.SHUT_WR)

        feeder = threading.Thread(target=feed, daemon=True) if stdin is not None else None
        try:
            if feeder is not None:
                feeder.start()
            for stream, data in docker.utils.socket.frames_iter(connection, tty=False):
                if stream == docker.utils.socket.STDOUT and stdout is not None:
                    stdout.write(data)
                elif stream == docker.utils.socket.STDERR:
                    errors.append(data)
        except (OSError, docker.errors.DockerException) as exc:
            raise EngineError(f"could not {what}: {exc}") from None
        finally:
            if feeder is not None:
                feeder.join()
            with contextlib.suppress(OSError):
                connection.close()
        if feeding and isinstance(feeding[0], OSError) and not isinstance(
                feeding[0], (BrokenPipeError, ConnectionResetError)):
            raise feeding[0]  # reading our own input failed
        exit_code = self._call(what, api.exec_inspect, created["Id"])["ExitCode"]
        text = b"".join(errors).decode("utf-8", "replace")
        return int(exit_code if exit_code is not None else -1), tuple(text.splitlines()[-20:])

    def start(self, container: Container) -> None:
        self._call(f"start container {container.name}", container.start)

    def rename(self, container: Container, name: str) -> None:
        self._call(f"rename container {container.name} to {name}", container.rename, name)

    @staticmethod
    def logs(container: Container, lines: int = 20) -> tuple[str, ...]:
        try:
            text = container.logs(tail=lines, stdout=True, stderr=True).decode("utf-8", "replace")
        except docker.errors.DockerException:
            return ()
        return tuple(text.splitlines()[-lines:])

    @staticmethod
    def _call(what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            # requests' errors: the engine went away in the middle of a call
            raise EngineError(f"could not {what}: {_explain(exc)}") from None


def healthcheck(check: Mapping[str, Any]) -> dict[str, Any]:
    """A Compose `healthcheck` as the Engine API's, in nanoseconds."""

    def nanoseconds(key: str, default: str) -> int:
        return int(duration_seconds(check.get(key, default)) * 1e9)

    return {"test": list(check["test"]), "interval": nanoseconds("interval", "30s"),
            "timeout": nanoseconds("timeout", "30s"), "retries": int(check.get("retries", 3)),
            "start_period": nanoseconds("start_period", "0s")}


def container_health(container: Container) -> str:
    """`healthy`, `starting`, `unhealthy`, or `exited:<code>` from the engine's state."""
    state = container.attrs.get("State") or {}
    status = state.get("Status")
    if status in ("exited", "dead"):
        return f"exited:{state.get('ExitCode', -1)}"
    if status == "restarting":
        return "unhealthy"
    if status != "running":
        return "starting"  # created, paused
    health = (state.get("Health") or {}).get("Status")
    return health or "healthy"  # no health check: running is all it promises


def wait_for(container: Container, until: float, poll: float = 0.5) -> str:
    """Reload the container until its health is settled or `until` passes."""
    while True:
        with contextlib.suppress(docker.errors.NotFound):
            container.reload()
        health = container_health(container)
        if health != "starting" or time.monotonic() >= until:
            return health
        time.sleep(poll)


def _restart_policy(restart: str) -> dict[str, Any]:
    if restart in ("no", ""):
        return {"Name": ""}
    if restart.startswith("on-failure"):
        _, _, count = restart.partition(":")
        return {"Name": "on-failure", "MaximumRetryCount": int(count or 0)}
    return {"Name": restart}


def _explain(exc: Exception) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    return str(exc)
