"""Fixtures of every e2e test: the local engine and a platform name of the test's own."""

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

# What the small test platforms run, Commander and Pilot included; the default
# platform's test needs every image.
IMAGES = tuple(f"heliostat/{name}:0.1.0" for name in (
    "base", "gateway", "registry", "postgres", "commander", "pilot"))


@pytest.fixture(scope="session")
def compose_engine(docker_client: docker.DockerClient) -> docker.DockerClient:
    """The local engine, holding the platform's images, with the platforms of dead pytest
    runs removed."""
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
def platform_name(compose_engine: docker.DockerClient) -> Iterator[str]:
    """A platform name unique to this test; all of its Docker objects go afterwards."""
    name = unique_platform_name()
    yield name
    remove_platform(compose_engine, name)


@pytest.fixture
def test_platform(platform_name: str, tmp_path: Path) -> PlatformUnderTest:
    return PlatformUnderTest(platform_name, tmp_path)
