"""Build a bundle from the local Docker engine: export the catalog's images, then write
manifest, signature and members into one tar, atomically. Same images, same bytes."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heliostat import __version__
from heliostat.bundle import signature
from heliostat.bundle.catalog_images import catalog_digest, catalog_images
from heliostat.bundle.engine_export import PartsCache, export_image
from heliostat.bundle.layout import (
    INSTALLER,
    MANIFEST,
    MANIFEST_DIGEST,
    SIGNATURE,
    BundleError,
    Image,
    Manifest,
    Member,
)
from heliostat.file_digest import sha256_file

DEFAULT_LEVEL = 19


def _tar_info(name: str, size: int) -> tarfile.TarInfo:
    # Fixed owner, mode and time: the bundle's bytes depend on its contents only.
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info


def _write(partial: Path, manifest_bytes: bytes, signature_bytes: bytes,
           files: list[tuple[str, Path]], members: tuple[Member, ...]) -> None:
    with partial.open("wb") as raw, tarfile.open(fileobj=raw, mode="w",
                                                 format=tarfile.PAX_FORMAT) as bundle:
        bundle.addfile(_tar_info(MANIFEST, len(manifest_bytes)), io.BytesIO(manifest_bytes))
        digest_bytes = f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}\n".encode()
        bundle.addfile(_tar_info(MANIFEST_DIGEST, len(digest_bytes)), io.BytesIO(digest_bytes))
        if signature_bytes:
            bundle.addfile(_tar_info(SIGNATURE, len(signature_bytes)),
                           io.BytesIO(signature_bytes))
        for (name, path), member in zip(files, members, strict=True):
            with path.open("rb") as source:
                bundle.addfile(_tar_info(name, member.size), source)
        raw.flush()
        os.fsync(raw.fileno())


def build_bundle(client: Any, output: Path, installer: Path, cache: PartsCache,
                 sign_key: Path | None = None, level: int = DEFAULT_LEVEL,
                 progress: Callable[[str], None] = lambda message: None,
                 references: dict[str, str] | None = None) -> dict[str, Any]:
    """Write the bundle of `references` (logical name -> engine reference; default:
    every image of the module catalog at this version)."""
    started = time.monotonic()
    if not installer.is_file():
        raise BundleError(f"installer {installer} not found: build it first (make zipapp)")
    output.parent.mkdir(parents=True, exist_ok=True)  # fail before the long export, not after
    if references is None:
        references = {name: f"heliostat/{name}:{__version__}" for name in catalog_images()}
    images: list[Image] = []
    for name, reference in sorted(references.items()):
        progress(f"exporting {reference}")
        images.append(export_image(client, name, reference, cache, level, progress))
    files: list[tuple[str, Path]] = [(INSTALLER, installer)]
    files += [(image.sbom, cache.sbom(image.id)) for image in images]
    files += [(image.config, cache.config(image.id)) for image in images]
    seen_layers: set[str] = set()
    for image in images:
        for layer in image.layers:
            if layer.diff_id not in seen_layers:
                seen_layers.add(layer.diff_id)
                files.append((layer.member, cache.layer(layer.diff_id)))
    members = tuple(Member(name, path.stat().st_size, sha256_file(path)) for name, path in files)
    manifest = Manifest("heliostat", __version__, catalog_digest(), tuple(images), members)
    manifest.check()
    manifest_bytes = manifest.to_bytes()
    signed = sign_key is not None
    signature_bytes = signature.sign(manifest_bytes, sign_key) if signed else b""
    partial = output.with_name(f".{output.name}.partial")
    progress(f"writing {output}")
    try:
        _write(partial, manifest_bytes, signature_bytes, files, members)
    except BaseException:
        partial.unlink(missing_ok=True)  # never leave half a bundle behind
        raise
    os.replace(partial, output)
    return {"file": str(output), "bytes": output.stat().st_size, "version": __version__,
            "images": {i.name: i.id for i in images}, "layers": len(seen_layers),
            "signed": signed, "digest": "sha256:" + hashlib.sha256(manifest_bytes).hexdigest(),
            "seconds": round(time.monotonic() - started, 1)}
