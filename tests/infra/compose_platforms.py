"""Platforms that e2e tests install on the local Docker engine, and their removal.

Each gets a name unique to the pytest run (`hst-<run's owner token>-<n>`), so parallel or
leftover runs never collide, and everything the Compose driver made for it — containers,
networks, volumes, all labelled `io.heliostat.platform` — is removed when the test ends,
passed or failed. A run killed before its teardown leaves names whose token is dead; the
next run removes those first.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests

from tests.infra.run_dir import process_token, token_alive

PLATFORM_LABEL = "io.heliostat.platform"
REPOSITORY = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"hst-(\d+-\d+)-\d+")
_counter = itertools.count(1)


def unique_platform_name() -> str:
    token = process_token(os.getpid())
    assert token is not None
    return f"hst-{token}-{next(_counter)}"


def remove_platform(client: docker.DockerClient, name: str) -> None:
    """Every container, network and volume labelled as platform `name`'s."""
    label = {"label": f"{PLATFORM_LABEL}={name}"}
    for container in client.containers.list(all=True, filters=label):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
    for network in client.networks.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            network.remove()
    for volume in client.volumes.list(filters=label):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            volume.remove(force=True)


def remove_abandoned_platforms(client: docker.DockerClient) -> None:
    """Platforms of pytest runs that no longer exist."""
    names = {c.labels.get(PLATFORM_LABEL, "")
             for c in client.containers.list(all=True, filters={"label": PLATFORM_LABEL})}
    names |= {(v.attrs.get("Labels") or {}).get(PLATFORM_LABEL, "")
              for v in client.volumes.list(filters={"label": PLATFORM_LABEL})}
    for name in names:
        match = _NAME.fullmatch(name)
        if match and not token_alive(match[1]):
            remove_platform(client, name)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240,
             every: float = 0.5) -> Any:
    """`check()`'s first true answer, asked every `every` seconds; a connection refused
    or reset on the way counts as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, urllib.error.URLError, requests.ConnectionError):
            found = check()
            if found:
                return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def container_of(engine: docker.DockerClient, platform: PlatformUnderTest,
                 service: str) -> Any:
    """The running container of a one-container service (its sidecars aside)."""
    found = [c for c in engine.containers.list(filters={"label": [
        f"{PLATFORM_LABEL}={platform.name}", f"io.heliostat.service={service}"]})
        if "io.heliostat.sidecar" not in c.labels]
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def replica(engine: docker.DockerClient, platform: PlatformUnderTest, hostname: str,
            sidecar: str | None = None) -> Any:
    """The container of a stateful replica, by its stable hostname (or one of its
    sidecars)."""
    service = hostname.rsplit("-", 1)[0]
    found = [c for c in engine.containers.list(all=True, filters={"label": [
        f"{PLATFORM_LABEL}={platform.name}", f"io.heliostat.service={service}"]})
        if c.labels.get("io.heliostat.sidecar") == sidecar
        and (c.attrs["Config"]["Hostname"] == hostname if sidecar is None
             else c.attrs["HostConfig"]["NetworkMode"].endswith(
                 replica(engine, platform, hostname).id))]
    assert len(found) == 1, [c.name for c in found]
    return found[0]


def get_inside(container: Any, url: str) -> str:
    """GET `url` from inside `container` (every platform image has python3): for ports
    the platform does not publish."""
    script = ("import sys, urllib.request; "
              f"sys.stdout.write(urllib.request.urlopen({url!r}, timeout=10).read().decode())")
    result = container.exec_run(["python3", "-c", script])
    if result.exit_code != 0:
        raise OSError(f"GET {url} in {container.name}: {result.output.decode()[-500:]}")
    return result.output.decode()


def clickstream_admin(client: docker.DockerClient, platform: PlatformUnderTest,
                      *args: str) -> dict:
    """`python -m clickstream admin …` inside an Event API container, as an operator
    would run it."""
    container = client.containers.get(f"{platform.name}-event-api-1")
    result = container.exec_run(["python3", "-m", "clickstream", "admin", *args,
                                 "--output", "json"])
    assert result.exit_code == 0, result.output.decode()
    return json.loads(result.output.decode().strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PlatformUnderTest:
    """A small real platform (the core module with external stores: the gateway and the
    registry), its platform.yaml and state directory, and the `heliostat` command on it."""

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.state_dir = directory / "state"
        self.port = free_port()
        self.other_port = free_port()  # for a config that moves the gateway
        while self.other_port == self.port:
            self.other_port = free_port()
        (directory / "pg-password").write_text("not-used\n")
        self.config = self.write_config()

    def write_config(self, file: str = "platform.yaml", *, port: int | None = None,
                     registry: str = "") -> Path:
        path = self.directory / file
        path.write_text(textwrap.dedent(f"""\
            apiVersion: heliostat/v1
            name: {self.name}
            profile: compose
            gateway: {{http_port: {port or self.port}}}
            images: {{registry: "{registry}"}}
            modules:
              clickstream: {{enabled: false}}
              pilot: {{enabled: false}}
              commander: {{enabled: false}}
              monitoring: {{enabled: false}}
            stores:
              postgres: {{mode: external, host: pg.invalid, database: x, user: x,
                         password_file: {self.directory / "pg-password"}}}
              redis: {{mode: external, host: redis.invalid}}
              kafka: {{mode: external, bootstrap: ["kafka.invalid:9092"]}}
            """))
        return path

    def command(self, *args: str, config: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "heliostat", *args, "-f", str(config or self.config),
                "--state-dir", str(self.state_dir)]

    def run(self, *args: str, config: Path | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args, config=config), capture_output=True,
                              text=True, timeout=timeout, cwd=REPOSITORY, env=heliostat_env(),
                              stdin=subprocess.DEVNULL)

    def start(self, *args: str, config: Path | None = None) -> subprocess.Popen[str]:
        # Ctrl-C as a terminal delivers it: SIGINT at its default, even when this test
        # run was started in the background (which ignores SIGINT, and so would the child).
        return subprocess.Popen(self.command(*args, config=config), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=REPOSITORY,
                                env=heliostat_env(), stdin=subprocess.DEVNULL,
                                preexec_fn=_default_sigint)

    @property
    def ledger(self) -> Path:
        return self.state_dir / self.name

    def pilot(self) -> requests.Session:
        """A session signed in to the platform's Pilot as `admin`, through the gateway
        (its requests take paths: `session.get(platform.url("/api/v1/me"))`)."""
        password = self.run("status", "--show-secret", "pilot-admin-password")
        assert password.returncode == 0, password.stderr
        session = requests.Session()
        form = session.get(self.url("/login"), timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token, form[:500]
        signed_in = session.post(self.url("/login"), timeout=30, allow_redirects=False, data={
            "username": "admin", "password": password.stdout.strip(), "next": "/",
            "csrf_token": token[1]})
        assert signed_in.status_code == 303, signed_in.text[:500]
        return session

    def url(self, path: str) -> str:
        """`path` on the platform's gateway."""
        return f"http://127.0.0.1:{self.port}{path}"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def heliostat_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPOSITORY / "installer")}
