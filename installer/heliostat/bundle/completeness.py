"""Does a bundle hold every image a platform.yaml's rendered manifests reference?"""

from __future__ import annotations

from pathlib import Path

from heliostat.bundle.catalog_images import model_images
from heliostat.bundle.layout import BundleError, Manifest
from heliostat.bundle.reader import BundleReader


def missing_images(manifest: Manifest, needed: list[str]) -> list[str]:
    held = {image.name for image in manifest.images}
    return [name for name in needed if name not in held]


def check_complete(bundle_file: Path, config_file: Path) -> None:
    from heliostat.config import load_config
    from heliostat.model import build_model

    model = build_model(load_config(config_file))
    with BundleReader(bundle_file) as bundle:
        missing = missing_images(bundle.manifest, model_images(model))
    if missing:
        raise BundleError(f"{bundle_file} lacks image(s) {', '.join(missing)} that "
                          f"{config_file} needs")
