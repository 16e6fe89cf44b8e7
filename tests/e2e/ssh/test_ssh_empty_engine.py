"""The air-gapped host at its barest: its Docker engine holds no image and has no network
(a dockerd of its own, in a network namespace of its own), so everything the platform runs
comes from the bundle shipped over SSH."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.e2e.ssh.airgap import AirgappedHosts
from tests.e2e.ssh.conftest import SshPlatform, new_workstation
from tests.infra.compose_platforms import PLATFORM_LABEL, free_port, unique_platform_name
from tests.infra.docker_engines import IsolatedEngine
from tests.infra.run_dir import RunDir

EMPTY_HOST = "airgapped-empty"


@pytest.fixture(scope="module")
def empty_engine(testbed_run: RunDir) -> Iterator[tuple[IsolatedEngine, docker.DockerClient]]:
    started = time.monotonic()
    engine = IsolatedEngine(testbed_run.path / "ssh-empty-engine")
    client = engine.start()
    print(f"setup: an empty Docker engine without network up in "
          f"{time.monotonic() - started:.1f}s")
    yield engine, client
    client.close()
    engine.stop()


def test_install_onto_an_empty_engine_from_the_bundle_alone(
        airgap: AirgappedHosts, empty_engine: tuple[IsolatedEngine, docker.DockerClient],
        ssh_bundle: Path, ssh_zipapp: Path, tmp_path: Path):
    engine, client = empty_engine
    assert client.images.list() == []
    airgap.add_target(EMPTY_HOST, engine.socket)
    platform = SshPlatform(unique_platform_name(), tmp_path, free_port(), airgap)
    station = new_workstation(tmp_path, ssh_zipapp)
    config = platform.config(airgap.jump_port, target=EMPTY_HOST)

    installed = station.run("install", "-f", str(config), "--bundle", str(ssh_bundle),
                            "--output", "json")
    assert installed.returncode == 0, installed.stderr
    assert "images: 2 loaded, 0 already present" in installed.stderr
    assert json.loads(installed.stdout)["status"] == "deployed"
    containers = client.containers.list(filters={"label": f"{PLATFORM_LABEL}={platform.name}"})
    assert sorted(c.labels["io.heliostat.service"] for c in containers) == ["gateway",
                                                                            "registry"]
    assert all(c.status == "running" for c in containers)
    status = json.loads(station.run("status", "-f", str(config), "--output", "json").stdout)
    assert {row["service"]: row["health"] for row in status["services"]} == {
        "gateway": "healthy", "registry": "healthy"}

    again = station.run("upgrade", "-f", str(config), "--bundle", str(ssh_bundle))
    assert again.returncode == 0, again.stderr
    assert "is on the host already" in again.stderr  # the bundle is not sent twice
    assert "images: 0 loaded, 2 already present" in again.stderr
