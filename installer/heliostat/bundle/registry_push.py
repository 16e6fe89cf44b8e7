"""Push a bundle's images to a registry straight from the bundle file, for targets that pull
their images (Kubernetes): what `docker push` does, with no engine and nothing unpacked.

Each image becomes an OCI image manifest: its config is the image's config (whose digest is
the image id) and its layers are the bundle's zstd-compressed layer members as they are. So
every digest — the manifest's too, which the rendered objects pin — follows from the
bundle's manifest alone, before anything is pushed: `render --bundle` and `install --bundle`
write the same references.

The bundle is read once, front to back. A blob the repository holds is not sent again; one
that another repository of the registry holds (a parent layer shared by images) is mounted
from it; every other blob is streamed to the registry as it passes, checked against the
bundle's manifest as it goes and by the registry against its digest. An image's manifest is
put last, once all its blobs are there, so a push stopped half-way tags nothing broken.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heliostat.bundle.layout import BundleError, Image, Manifest
from heliostat.bundle.reader import BundleReader
from heliostat.oci_registry import (
    OCI_CONFIG,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Registry,
    RegistryError,
    registry_host,
)

if TYPE_CHECKING:
    from heliostat.model import PlatformModel


@dataclass(frozen=True)
class Destination:
    """Where one image goes: `images.registry` is `host[:port][/prefix]`, and the image
    `heliostat/<name>:<tag>` under it, as the rendered manifests reference it."""

    registry: str
    image: Image

    @property
    def repository(self) -> str:
        prefix = self.registry.partition("/")[2]
        name = self.image.reference.rpartition(":")[0]
        return f"{prefix}/{name}" if prefix else name

    @property
    def tag(self) -> str:
        return self.image.reference.rpartition(":")[2]

    @property
    def reference(self) -> str:
        """`registry.internal:5000/heliostat/postgres:0.1.0`."""
        return f"{registry_host(self.registry)}/{self.repository}:{self.tag}"


def oci_manifest(manifest: Manifest, image: Image) -> bytes:
    """The image's OCI manifest, byte for byte the same for the same bundle."""
    def descriptor(media_type: str, member_name: str) -> dict[str, Any]:
        member = manifest.member(member_name)
        if member is None:
            raise BundleError(f"the manifest's image {image.name} needs {member_name}, which "
                              "the bundle does not list")
        return {"mediaType": media_type, "digest": f"sha256:{member.sha256}",
                "size": member.size}

    document = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, image.config),
        "layers": [descriptor(OCI_LAYER_ZSTD, layer.member) for layer in image.layers],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def manifest_digest(manifest: Manifest, image: Image) -> str:
    return "sha256:" + hashlib.sha256(oci_manifest(manifest, image)).hexdigest()


def image_digests(manifest: Manifest, names: Iterable[str], registry: str) -> dict[str, str]:
    """reference -> manifest digest of each image in `names`, as pushed to `registry`."""
    digests = {}
    for name in names:
        image = _image(manifest, name)
        digests[Destination(registry, image).reference] = manifest_digest(manifest, image)
    return digests


# (image name, what happened: "pushed" / "present")
Progress = Callable[[str, str], None]


def push_images(bundle_file: Path, registry: str, names: Iterable[str],
                progress: Progress = lambda name, what: None,
                public_key: Path | None = None) -> dict[str, Any]:
    """Push the images `names` of the bundle to `registry`; what was done, with figures.
    Raises BundleError for a damaged bundle and RegistryError for a registry that cannot be
    reached or refuses; images whose manifests were put before stay pushed."""
    started = time.monotonic()
    client = Registry(registry_host(registry))
    client.ping()
    with BundleReader(bundle_file, public_key) as reader:
        manifest = reader.manifest
        destinations = [Destination(registry, _image(manifest, name)) for name in sorted(names)]
        pending = [d for d in destinations if client.manifest_digest(d.repository, d.tag)
                   != manifest_digest(manifest, d.image)]
        for destination in destinations:
            if destination not in pending:
                progress(destination.image.name, "present")
        uploads = _blobs_to_send(client, manifest, pending)
        sent = 0
        if uploads:
            for stream in reader.members():
                repository = uploads.pop(stream.member.name, None)
                if repository is not None:
                    try:
                        client.upload_blob(repository, f"sha256:{stream.member.sha256}",
                                           stream.member.size, stream)
                    except RegistryError:
                        stream.finish()  # a damaged member is the bundle's fault: say so
                        raise
                    stream.finish()  # the bundle's own check, beside the registry's
                    sent += stream.member.size
                if not uploads:
                    break
        for destination in pending:
            _link_blobs(client, manifest, destination)
            digest = client.put_manifest(destination.repository, destination.tag,
                                         oci_manifest(manifest, destination.image))
            if digest and digest != manifest_digest(manifest, destination.image):
                raise RegistryError(f"the registry {client.host} stored {destination.reference}"
                                    f" as {digest}, not as the bundle's "
                                    f"{manifest_digest(manifest, destination.image)}")
            progress(destination.image.name, "pushed")
    return {"registry": registry, "pushed": [d.image.name for d in pending],
            "already_present": [d.image.name for d in destinations if d not in pending],
            "bytes_sent": sent, "seconds": round(time.monotonic() - started, 2)}


def _image(manifest: Manifest, name: str) -> Image:
    image = manifest.image(name)
    if image is None:
        raise BundleError(f"the bundle holds no image {name}")
    return image


def _blobs(manifest: Manifest, image: Image) -> list[tuple[str, str]]:
    """(member name, digest) of the image's config and layers."""
    names = [image.config, *(layer.member for layer in image.layers)]
    return [(name, f"sha256:{manifest.member(name).sha256}")  # type: ignore[union-attr]
            for name in names]


def _blobs_to_send(client: Registry, manifest: Manifest,
                   pending: list[Destination]) -> dict[str, str]:
    """member name -> the repository to upload it to: each blob no pending repository has
    and that cannot be mounted from one that has it, once."""
    uploads: dict[str, str] = {}
    for destination in pending:
        for member, digest in _blobs(manifest, destination.image):
            if member in uploads or client.has_blob(destination.repository, digest):
                continue
            if _holder(client, manifest, destination, member, digest) is None:
                uploads[member] = destination.repository
    return uploads


def _holder(client: Registry, manifest: Manifest, destination: Destination, member: str,
            digest: str) -> str | None:
    """Another repository of the bundle's images that holds the blob, to mount it from."""
    for image in manifest.images:
        other = Destination(destination.registry, image)
        if image is not destination.image and member in dict(_blobs(manifest, image)) \
                and client.has_blob(other.repository, digest):
            return other.repository
    return None


def _link_blobs(client: Registry, manifest: Manifest, destination: Destination) -> None:
    """Mount into the image's repository the blobs another repository holds."""
    for member, digest in _blobs(manifest, destination.image):
        if client.has_blob(destination.repository, digest):
            continue
        source = _holder(client, manifest, destination, member, digest)
        if source is None or not client.mount_blob(destination.repository, digest, source):
            raise RegistryError(f"the registry {client.host} has no blob {digest} of "
                                f"{destination.reference} after the upload, and would not "
                                "mount it from another repository")


def platform_digests(bundle_file: Path, model: PlatformModel) -> dict[str, str]:
    """reference -> digest of each image the platform runs, as `push_images` puts it in
    the platform's registry (`images.registry`); read from the bundle's manifest alone."""
    from heliostat.bundle.catalog_images import model_images

    if not model.values["images"]["registry"]:
        return {}  # the images are loaded into an engine, not pulled
    with BundleReader(bundle_file) as reader:
        return image_digests(reader.manifest, model_images(model),
                             model.values["images"]["registry"])
