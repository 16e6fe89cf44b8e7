"""Which images the platform can run, and a digest of the module catalog they serve."""

from __future__ import annotations

import hashlib

from heliostat.catalog import data_root, load_modules
from heliostat.model import PlatformModel


def catalog_images() -> list[str]:
    """Every logical image any module may run (services and sidecars, enabled or not),
    so that one bundle serves every platform.yaml."""
    names = set()
    for module in load_modules():
        for spec in module.services.values():
            names.add(spec["image"])
            names.update(sidecar["image"] for sidecar in spec.get("sidecars", []))
    return sorted(names)


def model_images(model: PlatformModel) -> list[str]:
    """The logical images one platform's rendered manifests reference."""
    names = set()
    for service in model.services:
        names.add(service.image)
        names.update(sidecar["image"] for sidecar in service.sidecars)
    return sorted(names)


def catalog_digest() -> str:
    """sha256 over the module catalog and the profiles, as the installer embeds them."""
    root = data_root()
    digest = hashlib.sha256()
    files = [p for p in (root / "bundles").glob("*/module.yaml")]
    files += [p for p in (root / "bundles").glob("*/files/**/*") if p.is_file()]
    files += [p for p in (root / "profiles").rglob("*") if p.is_file()]
    for path in sorted(files):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()
