"""A CycloneDX SBOM per image: every Debian package (from the image's dpkg database),
Python distribution (from its venv's metadata) and jar (from each jar's Maven
properties), listed by inventory.py run inside the image without network."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any


def inventory_script() -> str:
    """The source of inventory.py, which the image's python3 runs."""
    return Path(__file__).with_name("inventory.py").read_text()


def _purl(kind: str, name: str, version: str, extra: str) -> str | None:
    if kind == "deb":
        return f"pkg:deb/debian/{name}@{version}?arch={extra}&distro=debian-12"
    if kind == "pypi":
        return f"pkg:pypi/{name.lower().replace('_', '-')}@{version}"
    if kind == "maven":
        return f"pkg:maven/{name}@{version}"
    return None


def cyclonedx(image: str, reference: str, image_id: str, rows: list[list[str]]) -> bytes:
    components: list[dict[str, Any]] = []
    for kind, name, version, extra in sorted(rows):
        component: dict[str, Any] = {"type": "library", "name": name.split("/")[-1],
                                     "version": version}
        if kind == "maven":
            component["group"] = name.split("/")[0]
        purl = _purl(kind, name, version, extra)
        if purl:
            component["purl"] = purl
        component["properties"] = [{"name": "heliostat:source", "value": kind}]
        components.append(component)
    document = {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        # Same image, same serial number: the SBOM is as reproducible as the image.
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, image_id)}",
        "metadata": {"component": {
            "type": "container", "name": reference.rsplit(":", 1)[0],
            "version": reference.rsplit(":", 1)[1],
            "hashes": [{"alg": "SHA-256", "content": image_id.split(":", 1)[1]}],
            "properties": [{"name": "heliostat:image", "value": image}]}},
        "components": components,
    }
    return json.dumps(document, indent=1).encode() + b"\n"


def summary(document: bytes) -> dict[str, int]:
    """Component counts by source kind (deb, pypi, maven, jar)."""
    counts: dict[str, int] = {}
    for component in json.loads(document).get("components", []):
        kind = next((p["value"] for p in component.get("properties", [])
                     if p["name"] == "heliostat:source"), "other")
        counts[kind] = counts.get(kind, 0) + 1
    return counts
