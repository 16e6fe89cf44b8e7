"""Fixtures of the ssh transport's tests: the zipapp of this checkout, the air-gapped host
behind its jump host, a small bundle, a workstation (its own HOME, no agent unless asked)
and one platform installed over SSH that the tests share."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from heliostat.bundle.engine_export import PartsCache
from heliostat.bundle.writer import build_bundle
from tests.e2e.ssh.airgap import TARGET_NAME, AirgappedHosts, platform_yaml
from tests.infra import docker_engine
from tests.infra.compose_platforms import (
    REPOSITORY,
    free_port,
    remove_platform,
    unique_platform_name,
)
from tests.infra.run_dir import RunDir
from tests.infra.settings import cache_dir
from tests.infra.tcp_proxy import TcpProxy


def timed(what: str, started: float) -> None:
    print(f"setup: {what} in {time.monotonic() - started:.1f}s")


@pytest.fixture(scope="session")
def ssh_zipapp(testbed_run: RunDir) -> Path:
    """dist/heliostat.pyz as `make zipapp` builds it, from this checkout's code."""
    started = time.monotonic()
    out = testbed_run.subdir("ssh-zipapp") / "heliostat.pyz"
    subprocess.run([sys.executable, "tools/build_zipapp.py", "--cache",
                    str(cache_dir() / "zipapp-wheels"), "--out", str(out)],
                   cwd=REPOSITORY, check=True, capture_output=True)
    timed(f"zipapp built ({out.stat().st_size / 1e6:.0f} MB)", started)
    return out


@pytest.fixture(scope="session")
def airgap(compose_engine: docker.DockerClient, testbed_run: RunDir) -> Iterator[AirgappedHosts]:
    image = docker_engine.require_image(compose_engine, "SSHD_IMAGE")
    hosts = AirgappedHosts(compose_engine, testbed_run, image)
    print(f"setup: jump host and air-gapped Docker host up in {hosts.setup_seconds:.1f}s")
    yield hosts
    hosts.remove()


@pytest.fixture(scope="session")
def ssh_bundle(compose_engine: docker.DockerClient, testbed_run: RunDir,
               ssh_zipapp: Path) -> Path:
    """The images of the test platform (gateway, registry) and the zipapp, in one bundle."""
    started = time.monotonic()
    directory = testbed_run.subdir("ssh-bundle")
    path = directory / "gateway-registry.bundle"
    build_bundle(compose_engine, path, ssh_zipapp, PartsCache(directory / "parts"), level=1,
                 references={n: f"heliostat/{n}:0.1.0" for n in ("gateway", "registry")})
    timed(f"bundle built ({path.stat().st_size / 1e6:.0f} MB)", started)
    return path


@dataclass
class Workstation:
    """Where heliostat runs: a HOME of its own (~/.ssh), this checkout's code, and the
    zipapp to ship."""

    home: Path
    zipapp: Path
    agent_socket: str | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
        env.update(HOME=str(self.home), HELIOSTAT_ZIPAPP=str(self.zipapp),
                   PYTHONPATH=str(REPOSITORY / "installer"))
        if self.agent_socket:
            env["SSH_AUTH_SOCK"] = self.agent_socket
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "heliostat", *args]

    def run(self, *args: str, timeout: float = 600,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), capture_output=True, text=True,
                              timeout=timeout, cwd=REPOSITORY, env=self.env(),
                              input=stdin, stdin=None if stdin is not None
                              else subprocess.DEVNULL)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=REPOSITORY,
                                env=self.env(), stdin=subprocess.DEVNULL)


def new_workstation(directory: Path, zipapp: Path) -> Workstation:
    home = directory / "home"
    (home / ".ssh").mkdir(parents=True, exist_ok=True)
    return Workstation(home, zipapp)


@pytest.fixture
def workstation(tmp_path: Path, ssh_zipapp: Path) -> Workstation:
    return new_workstation(tmp_path, ssh_zipapp)


@pytest.fixture
def jump_proxy(airgap: AirgappedHosts, tcp_proxy: Callable[[str, int], TcpProxy]) -> TcpProxy:
    """The jump host through a proxy whose cut() drops every connection, like a network
    failure."""
    return tcp_proxy("127.0.0.1", airgap.jump_port)


@dataclass
class SshPlatform:
    """A test platform on the air-gapped host and how a workstation reaches it."""

    name: str
    directory: Path
    port: int
    airgap: AirgappedHosts

    def config(self, jump_port: int, file: str = "platform.yaml", *, port: int | None = None,
               key_file: Path | str | None = None, known_hosts: Path | None = None,
               extra: str = "", target: str = TARGET_NAME) -> Path:
        key = self.airgap.keys.plain if key_file is None else key_file
        known = known_hosts or self.airgap.known_hosts(
            self.directory / f"known_hosts-{target}-{jump_port}", jump_port, target=target)
        ssh = (f"{{key_file: '{key}', known_hosts: '{known}', "
               f"jump_hosts: ['root@127.0.0.1:{jump_port}']{extra}}}")
        return platform_yaml(self.directory / file, self.name, self.airgap.share,
                             port or self.port, ssh, host=f"ssh://root@{target}:22")

    @property
    def ledger(self) -> Path:
        return self.airgap.share / "state" / self.name


@dataclass
class Installed:
    platform: SshPlatform
    result: subprocess.CompletedProcess[str]
    workstation: Workstation


@pytest.fixture(scope="session")
def installed(airgap: AirgappedHosts, ssh_bundle: Path, ssh_zipapp: Path,
              compose_engine: docker.DockerClient,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """One platform installed over SSH through the jump host from the bundle; tests that
    only read it or bring it back to where it was share it."""
    directory = tmp_path_factory.mktemp("ssh-platform")
    platform = SshPlatform(unique_platform_name(), directory, free_port(), airgap)
    station = new_workstation(directory, ssh_zipapp)
    started = time.monotonic()
    result = station.run("install", "-f", str(platform.config(airgap.jump_port)),
                         "--bundle", str(ssh_bundle))
    timed("platform installed over SSH", started)
    yield Installed(platform, result, station)
    remove_platform(compose_engine, platform.name)
