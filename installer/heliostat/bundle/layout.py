"""What a bundle file is: an uncompressed tar whose first member is the manifest.

    heliostat-bundle.json       the manifest: version, catalog digest, images, and the
                                size and sha256 of every other member, in file order
    heliostat-bundle.json.sha256  the manifest's own sha256, so that a damaged manifest
                                is told apart from a damaged member
    heliostat-bundle.sig        optional: ed25519 signature of the manifest's bytes
    heliostat.pyz               the installer
    sbom/<image>.cdx.json       CycloneDX SBOM of each image
    configs/<id>.json           each image's config (its sha256 is the image id)
    layers/<diff_id>.tar.zst    each layer once, zstd-compressed

The manifest comes first so that a reader can check every later member as it streams
past, without unpacking anything or holding more than one chunk in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

FORMAT = 1
MANIFEST = "heliostat-bundle.json"
MANIFEST_DIGEST = "heliostat-bundle.json.sha256"
SIGNATURE = "heliostat-bundle.sig"
INSTALLER = "heliostat.pyz"
CHUNK = 1 << 20


class BundleError(Exception):
    """A bundle that cannot be used, and why; nothing was loaded or changed."""


def layer_member(diff_id: str) -> str:
    return f"layers/{_hex(diff_id)}.tar.zst"


def config_member(image_id: str) -> str:
    return f"configs/{_hex(image_id)}.json"


def sbom_member(image: str) -> str:
    return f"sbom/{image}.cdx.json"


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64:
        raise BundleError(f"not a sha256 digest: {digest!r}")
    return value


def check_member_name(name: str) -> None:
    """Refuse names that could escape a directory if anyone ever extracted them."""
    path = PurePosixPath(name)
    if (not name or path.is_absolute() or "\\" in name or ".." in path.parts
            or name != str(path)):
        raise BundleError(f"member {name!r} has an unsafe path")


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Layer:
    diff_id: str
    size: int  # uncompressed

    @property
    def member(self) -> str:
        return layer_member(self.diff_id)


@dataclass(frozen=True)
class Image:
    name: str
    reference: str
    id: str
    layers: tuple[Layer, ...]

    @property
    def config(self) -> str:
        return config_member(self.id)

    @property
    def sbom(self) -> str:
        return sbom_member(self.name)


@dataclass(frozen=True)
class Manifest:
    platform: str
    version: str
    catalog_digest: str
    images: tuple[Image, ...]
    members: tuple[Member, ...]

    def to_bytes(self) -> bytes:
        document = {
            "format": FORMAT, "platform": self.platform, "version": self.version,
            "catalog_digest": self.catalog_digest,
            "images": {i.name: {"reference": i.reference, "id": i.id,
                                "layers": [{"diff_id": la.diff_id, "size": la.size}
                                           for la in i.layers]}
                       for i in self.images},
            "members": [{"name": m.name, "size": m.size, "sha256": m.sha256}
                        for m in self.members],
        }
        return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            document: dict[str, Any] = json.loads(data)
            if document.get("format") != FORMAT:
                raise BundleError(f"bundle format {document.get('format')!r} is not one this "
                                  f"heliostat reads (it reads format {FORMAT})")
            images = tuple(
                Image(name, spec["reference"], spec["id"],
                      tuple(Layer(la["diff_id"], int(la["size"])) for la in spec["layers"]))
                for name, spec in sorted(document["images"].items()))
            members = tuple(Member(m["name"], int(m["size"]), m["sha256"])
                            for m in document["members"])
            manifest = cls(document["platform"], document["version"],
                           document["catalog_digest"], images, members)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise BundleError(f"the manifest is malformed ({error})") from None
        manifest.check()
        return manifest

    def check(self) -> None:
        """Every image's config, layers and SBOM must be members, each listed once."""
        names = [m.name for m in self.members]
        for name in names:
            check_member_name(name)
        if len(set(names)) != len(names):
            raise BundleError("the manifest lists a member twice")
        listed = set(names)
        for image in self.images:
            for needed in (image.config, image.sbom, *(la.member for la in image.layers)):
                if needed not in listed:
                    raise BundleError(f"the manifest's image {image.name} needs {needed}, "
                                      "which the bundle does not list")

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def image(self, name: str) -> Image | None:
        return next((i for i in self.images if i.name == name), None)
