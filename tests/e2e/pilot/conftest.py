"""Fixtures of Pilot's e2e tests: the local engine holding the images a platform with
Pilot runs, and a platform name whose Docker objects all go when the test ends (as in
tests/e2e/heliostat, whose conftest is not visible from here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.infra.compose_platforms import (
    PlatformUnderTest,
    remove_abandoned_platforms,
    remove_platform,
    unique_platform_name,
)

IMAGES = ("heliostat/base:0.1.0", "heliostat/gateway:0.1.0", "heliostat/registry:0.1.0",
          "heliostat/postgres:0.1.0", "heliostat/commander:0.1.0", "heliostat/pilot:0.1.0")


@pytest.fixture(scope="session")
def compose_engine(docker_client: docker.DockerClient) -> docker.DockerClient:
    missing = []
    for image in IMAGES:
        try:
            docker_client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    if missing:
        pytest.fail(f"images {', '.join(missing)} are missing: run `make images`",
                    pytrace=False)
    remove_abandoned_platforms(docker_client)
    return docker_client


@pytest.fixture
def test_platform(compose_engine: docker.DockerClient,
                  tmp_path: Path) -> Iterator[PlatformUnderTest]:
    name = unique_platform_name()
    yield PlatformUnderTest(name, tmp_path)
    remove_platform(compose_engine, name)
