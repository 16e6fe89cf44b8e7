"""What a bundle holds, read from its manifest and SBOMs (which come before the layers,
so this stops early; `verify` is what checks every byte)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heliostat.bundle import sbom
from heliostat.bundle.reader import BundleReader


def inspect_bundle(path: Path) -> dict[str, Any]:
    with BundleReader(path) as bundle:
        manifest = bundle.manifest
        sboms: dict[str, dict[str, int]] = {}
        wanted = {image.sbom: image.name for image in manifest.images}
        for stream in bundle.members():
            if stream.member.name in wanted:
                data = stream.read(stream.member.size + 1)
                sboms[wanted[stream.member.name]] = sbom.summary(data)
            if len(sboms) == len(wanted):
                break
        signed, digest = bundle.signed, bundle.digest
    sizes = {m.name: m.size for m in manifest.members}
    images = []
    counted: set[str] = set()
    for image in manifest.images:
        own = [la for la in image.layers if la.member not in counted]
        counted.update(la.member for la in image.layers)
        images.append({
            "name": image.name, "reference": image.reference, "id": image.id,
            "layers": len(image.layers),
            "size": sum(la.size for la in image.layers),
            "stored_bytes_new": sum(sizes[la.member] for la in own),
            "sbom": sboms.get(image.name, {})})
    return {"file": str(path), "platform": manifest.platform, "version": manifest.version,
            "catalog_digest": manifest.catalog_digest, "digest": digest, "signed": signed,
            "bytes": path.stat().st_size, "images": images}
