"""`heliostat doctor` on the real local engine: a host that can take the platform passes,
and each thing that stops it — a port in use, a missing or incomplete bundle, an engine
that does not answer — is a finding that names the cause and what to do, not a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from heliostat.bundle.engine_export import PartsCache
from heliostat.bundle.reader import BundleReader
from heliostat.bundle.writer import build_bundle
from heliostat.doctor import human_bytes
from tests.infra.compose_platforms import (
    PLATFORM_LABEL,
    REPOSITORY,
    PlatformUnderTest,
    heliostat_env,
)
from tests.infra.docker_engines import IsolatedEngine
from tests.infra.run_dir import RunDir

CHECKS = ["engine", "clock", "memory", "docker-disk", "state-disk", "ports", "bundle",
          "images", "host-folders", "state-dir", "ledger-lock"]


def doctor(platform: PlatformUnderTest, *args: str,
           env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Exit code and the JSON report, which must parse whatever the outcome."""
    result = subprocess.run(platform.command("doctor", *args, "--output", "json"),
                            capture_output=True, text=True, timeout=120, cwd=REPOSITORY,
                            env={**heliostat_env(), **(env or {})}, stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert report["ok"] == (result.returncode == 0)
    return result.returncode, {c["name"]: c for c in report["checks"]}


def small_bundle(client: docker.DockerClient, directory: Path, names: list[str]) -> Path:
    """A bundle of some of the platform's images, compressed fast."""
    installer = directory / "heliostat.pyz"
    installer.write_bytes(b"#!/usr/bin/env python3\n# stands in for the zipapp\n")
    path = directory / f"{'-'.join(names)}.bundle"
    build_bundle(client, path, installer, PartsCache(directory / "parts"), level=1,
                 references={name: f"heliostat/{name}:0.1.0" for name in names})
    return path


@pytest.fixture(scope="module")
def bundles(compose_engine: docker.DockerClient,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("doctor-bundles")
    return {"complete": small_bundle(compose_engine, directory, ["gateway", "registry"]),
            "partial": small_bundle(compose_engine, directory, ["gateway"])}


def test_a_host_that_can_take_the_platform(test_platform: PlatformUnderTest,
                                           compose_engine: docker.DockerClient):
    code, checks = doctor(test_platform)
    assert code == 0, checks
    assert all(c["status"] in ("ok", "warn") for c in checks.values())
    version = compose_engine.version()
    assert checks["engine"]["status"] == "ok"
    assert f"Docker Engine {version['Version']} (API {version['ApiVersion']})" in \
        checks["engine"]["finding"]
    memory = human_bytes(compose_engine.info()["MemTotal"])
    assert f"the engine has {memory}" in checks["memory"]["finding"]
    assert checks["ports"]["finding"] == f"{test_platform.port}/tcp (gateway) is free"
    assert checks["images"]["finding"] == "all 2 images the platform runs are in the engine"
    # A preflight changes nothing: not even the state directory is made
    assert not test_platform.state_dir.exists()


def test_a_port_in_use_names_the_process_holding_it(test_platform: PlatformUnderTest):
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("0.0.0.0", test_platform.port))
        held.listen()
        code, checks = doctor(test_platform)
    assert code == 1
    ports = checks["ports"]
    assert ports["status"] == "fail"
    assert ports["finding"].startswith(f"port {test_platform.port}/tcp, which gateway "
                                       f"publishes, is in use by pid {os.getpid()} (")
    assert "gateway.http_port" in ports["fix"]
    assert all(c["status"] != "fail" for name, c in checks.items() if name != "ports")


@pytest.fixture
def other_container(compose_engine: docker.DockerClient,
                    test_platform: PlatformUnderTest) -> Iterator[str]:
    """A container of no platform, publishing the test platform's port."""
    name = f"{test_platform.name}-squatter"
    container = compose_engine.containers.run(
        "heliostat/base:0.1.0", ["sleep", "300"], name=name, detach=True,
        ports={"9999/tcp": test_platform.port})
    try:
        yield name
    finally:
        container.remove(force=True)


def test_a_port_published_by_another_container_names_it(test_platform: PlatformUnderTest,
                                                         other_container: str):
    # The engine's port proxy holds it; the container behind it is what to stop
    code, checks = doctor(test_platform)
    assert code == 1
    assert checks["ports"]["finding"] == (f"port {test_platform.port}/tcp, which gateway "
                                          f"publishes, is held by container {other_container}")


def test_an_installed_platform_passes_and_holds_its_own_port(
        test_platform: PlatformUnderTest, compose_engine: docker.DockerClient):
    installed = test_platform.run("install")
    assert installed.returncode == 0, installed.stderr
    gateway = compose_engine.containers.list(filters={
        "label": [f"{PLATFORM_LABEL}={test_platform.name}"], "publish": str(test_platform.port)})
    assert len(gateway) == 1
    code, checks = doctor(test_platform)
    assert code == 0, checks
    assert checks["ports"]["finding"] == (f"{test_platform.port}/tcp (gateway) is held by "
                                          f"this platform's own container {gateway[0].name}")
    assert checks["state-dir"]["status"] == "ok"
    assert "secret file(s) all 0600" in checks["state-dir"]["finding"]
    assert checks["ledger-lock"]["finding"].startswith("not held")


def test_a_missing_bundle_is_reported(test_platform: PlatformUnderTest, tmp_path: Path):
    code, checks = doctor(test_platform, "--bundle", str(tmp_path / "nowhere.bundle"))
    assert code == 1
    assert checks["bundle"]["status"] == "fail"
    assert checks["bundle"]["finding"] == f"there is no bundle at {tmp_path}/nowhere.bundle"
    assert "make bundle" in checks["bundle"]["fix"]


def test_a_bundle_lacking_an_image_is_reported(test_platform: PlatformUnderTest,
                                               bundles: dict[str, Path]):
    code, checks = doctor(test_platform, "--bundle", str(bundles["partial"]))
    assert code == 1
    assert checks["bundle"]["finding"] == (
        f"{bundles['partial']} lacks the image(s) registry that platform "
        f"{test_platform.name} runs")
    assert checks["bundle"]["fix"]


def test_a_truncated_bundle_is_reported(test_platform: PlatformUnderTest,
                                        bundles: dict[str, Path], tmp_path: Path):
    cut = tmp_path / "cut.bundle"
    with bundles["complete"].open("rb") as source:
        cut.write_bytes(source.read(bundles["complete"].stat().st_size // 2))
    code, checks = doctor(test_platform, "--bundle", str(cut))
    assert code == 1
    assert checks["bundle"]["finding"].startswith(f"{cut} is truncated: it has ")
    assert f"heliostat bundle verify {cut}" in checks["bundle"]["fix"]


def test_a_complete_bundle_passes(test_platform: PlatformUnderTest, bundles: dict[str, Path]):
    code, checks = doctor(test_platform, "--bundle", str(bundles["complete"]))
    assert code == 0, checks
    assert checks["bundle"]["status"] == "ok"
    assert "holds all 2 images the platform runs" in checks["bundle"]["finding"]


def test_an_engine_that_does_not_answer(test_platform: PlatformUnderTest, tmp_path: Path):
    dead = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as left_behind:
        left_behind.bind(str(dead))  # as a daemon that died leaves its socket
    code, checks = doctor(test_platform, env={"DOCKER_HOST": f"unix://{dead}"})
    assert code == 1
    engine = checks["engine"]
    assert engine["status"] == "fail"
    assert engine["finding"] == (f"cannot reach the Docker engine at unix://{dead} "
                                 f"(DOCKER_HOST): nothing listens on {dead} (the socket of "
                                 "a daemon that is not running?)")
    assert "systemctl start docker" in engine["fix"] and "unset DOCKER_HOST" in engine["fix"]
    for name in ("clock", "memory", "docker-disk", "images"):
        assert checks[name]["status"] == "warn"
        assert checks[name]["finding"].startswith("not checked: ")
    # Ports are tried on this host, engine or not
    assert checks["ports"]["status"] == "ok"


def test_the_text_report(test_platform: PlatformUnderTest, tmp_path: Path):
    result = subprocess.run(test_platform.command("doctor"), capture_output=True, text=True,
                            timeout=120, cwd=REPOSITORY, stdin=subprocess.DEVNULL,
                            env={**heliostat_env(), "DOCKER_HOST": f"unix://{tmp_path}/x.sock",
                                 "PYTHONIOENCODING": "ascii"})
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("XX engine        cannot reach the Docker engine")
    assert lines[1].lstrip().startswith("fix: start the Docker daemon")
    assert lines[-1].startswith(f"platform {test_platform.name}: ")
    assert lines[-1].endswith("1 failed; fix what failed, then run `heliostat doctor` again")


@pytest.fixture(scope="module")
def airgapped_engine(testbed_run: RunDir) -> Iterator[str]:
    """The URL of an engine holding no image, as on an air-gapped host before its bundle."""
    engine = IsolatedEngine(testbed_run.path / "doctor-airgapped-engine")
    client = engine.start()
    try:
        yield engine.url
    finally:
        client.close()
        engine.stop()


def test_an_airgapped_engine_takes_its_images_from_the_bundle(
        test_platform: PlatformUnderTest, bundles: dict[str, Path], airgapped_engine: str):
    empty = {"DOCKER_HOST": airgapped_engine}
    code, checks = doctor(test_platform, env=empty)
    assert code == 1
    assert checks["images"]["finding"].startswith(
        "2 of 2 images the platform runs are neither in the engine nor in a bundle (none "
        "given): heliostat/gateway:0.1.0, heliostat/registry:0.1.0")

    code, checks = doctor(test_platform, "--bundle", str(bundles["complete"]), env=empty)
    assert code == 0, checks
    assert checks["images"]["finding"] == ("all 2 images the platform runs are available: "
                                           "0 in the engine, 2 to load from the bundle")
    # The disk it needs counts the layers the engine lacks, each once
    with BundleReader(bundles["complete"]) as reader:
        layers = {la.diff_id: la.size for image in reader.manifest.images
                  for la in image.layers}
    assert f"({human_bytes(sum(layers.values()))} of images to load, x2 while loading" in \
        checks["docker-disk"]["finding"]
