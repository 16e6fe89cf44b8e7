"""`install --bundle FILE` on the real engine: the bundle's images are loaded (or found
present) and recorded in the ledger; a bundle lacking an image the platform runs is
refused before anything changes."""

import json
from pathlib import Path

import docker
import pytest

from heliostat.bundle.engine_export import PartsCache
from heliostat.bundle.writer import build_bundle
from tests.infra.compose_platforms import PLATFORM_LABEL, PlatformUnderTest


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
    directory = tmp_path_factory.mktemp("bundles")
    return {"complete": small_bundle(compose_engine, directory, ["gateway", "registry"]),
            "partial": small_bundle(compose_engine, directory, ["gateway"])}


def test_install_from_a_bundle_records_it(test_platform: PlatformUnderTest,
                                          compose_engine: docker.DockerClient,
                                          bundles: dict[str, Path]):
    platform = test_platform
    refused = platform.run("install", "--bundle", str(bundles["partial"]))
    assert refused.returncode == 2, refused.stderr
    assert "lacks the image(s) registry" in refused.stderr
    assert compose_engine.containers.list(
        all=True, filters={"label": f"{PLATFORM_LABEL}={platform.name}"}) == []

    installed = platform.run("install", "--bundle", str(bundles["complete"]))
    assert installed.returncode == 0, installed.stderr
    assert "images: 0 loaded, 2 already present" in installed.stderr
    revision = json.loads((platform.ledger / "revision-000001.json").read_text())
    assert revision["bundle_version"] == "0.1.0"
    assert revision["bundle_digest"].startswith("sha256:")
    assert set(revision["images"]) == {"heliostat/gateway:0.1.0", "heliostat/registry:0.1.0"}
