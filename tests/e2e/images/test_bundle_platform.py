"""The whole platform's bundle, loaded into an empty Docker engine with no network (as an
air-gapped host has): every image the platform needs arrives and starts its process."""

from __future__ import annotations

import pytest

from heliostat import __version__
from heliostat.bundle.catalog_images import catalog_images
from heliostat.bundle.engine_export import PartsCache
from heliostat.bundle.loader import load_into_engine
from heliostat.bundle.reader import verify
from heliostat.bundle.writer import build_bundle
from tests.infra.docker_engines import IsolatedEngine
from tests.infra.settings import cache_dir
from tools.images.recipes import ROOT, discover

# Fast compression: these tests check what the bundle holds, bench/bundle its size.
LEVEL = 3


@pytest.fixture(scope="module")
def platform_bundle(docker_client, tmp_path_factory):
    installer = ROOT / "dist" / "heliostat.pyz"
    if not installer.exists():
        pytest.fail("dist/heliostat.pyz is missing: run `make zipapp`", pytrace=False)
    path = tmp_path_factory.mktemp("platform-bundle") / f"heliostat-{__version__}.bundle"
    build_bundle(docker_client, path, installer, PartsCache(cache_dir() / f"bundle-parts-{LEVEL}"),
                 level=LEVEL)
    return path


@pytest.fixture(scope="module")
def airgapped_engine(testbed_run):
    engine = IsolatedEngine(testbed_run.path / "airgapped-engine")
    client = engine.start()
    yield client
    client.close()
    engine.stop()


def test_the_bundle_holds_every_catalog_image_and_verifies(platform_bundle):
    report = verify(platform_bundle, version=__version__)
    assert report["images"] == len(catalog_images())


def test_loaded_images_start_their_process_without_network(platform_bundle, airgapped_engine):
    assert airgapped_engine.images.list() == []
    report = load_into_engine(platform_bundle, airgapped_engine)
    assert sorted(report["loaded"]) == catalog_images()
    recipes = discover()
    for name in catalog_images():
        smoke = recipes[name].spec["smoke"]
        output = airgapped_engine.containers.run(f"heliostat/{name}:{__version__}",
                                                 smoke["command"], network_mode="none",
                                                 remove=True, stderr=True)
        assert smoke["expect"] in output.decode(errors="replace"), name
    again = load_into_engine(platform_bundle, airgapped_engine)
    assert again["loaded"] == [] and sorted(again["already_present"]) == catalog_images()
