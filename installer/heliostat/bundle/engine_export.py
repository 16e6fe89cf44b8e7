"""Take images out of the local Docker engine as bundle parts: each layer compressed
once into a cache keyed by its diff_id, each config kept by its image id, an SBOM per
image. A second build of unchanged images reads nothing from the engine."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heliostat.bundle import sbom
from heliostat.bundle.layout import CHUNK, BundleError, Image, Layer

Progress = Callable[[str], None]


class _IteratorFile(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (the engine's save stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size], self._buffer = self._buffer[:size], self._buffer[size:]
        return size


@dataclass(frozen=True)
class PartsCache:
    """Compressed layers, configs and SBOMs, each stored under its digest."""

    root: Path

    def layer(self, diff_id: str) -> Path:
        return self.root / "layers" / f"{diff_id.split(':')[1]}.tar.zst"

    def layer_size(self, diff_id: str) -> int:
        return json.loads(self.layer(diff_id).with_suffix(".json").read_text())["size"]

    def config(self, image_id: str) -> Path:
        return self.root / "configs" / f"{image_id.split(':')[1]}.json"

    def sbom(self, image_id: str) -> Path:
        return self.root / "sbom" / f"{image_id.split(':')[1]}.cdx.json"

    def has_layer(self, diff_id: str) -> bool:
        return self.layer(diff_id).exists() and self.layer(diff_id).with_suffix(".json").exists()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _store_layer(source: Any, cache: PartsCache, level: int, progress: Progress) -> str:
    """Keep one layer tar of the save stream, compressed, unless the cache has it;
    returns its diff_id. The engine's member names need not say which layer it is, so
    the bytes are hashed first (into a scratch file) and compressed only when new."""
    import zstandard

    scratch_dir = cache.root / "layers"
    scratch_dir.mkdir(parents=True, exist_ok=True)
    scratch = scratch_dir / f".scratch-{os.getpid()}"
    digest, size = hashlib.sha256(), 0
    try:
        with scratch.open("wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        diff_id = "sha256:" + digest.hexdigest()
        if cache.has_layer(diff_id):
            return diff_id
        progress(f"compressing layer {diff_id[7:19]} ({size / 1e6:.0f} MB)")
        compressor = zstandard.ZstdCompressor(level=level, threads=-1, write_content_size=True)
        compressed = scratch_dir / f".compressed-{os.getpid()}"
        with scratch.open("rb") as raw, compressed.open("wb") as out:
            compressor.copy_stream(raw, out, size=size, read_size=CHUNK, write_size=CHUNK)
        os.replace(compressed, cache.layer(diff_id))
        _write_atomically(cache.layer(diff_id).with_suffix(".json"),
                          json.dumps({"size": size}).encode())
        return diff_id
    finally:
        scratch.unlink(missing_ok=True)


def _save_missing_parts(client: Any, reference: str, image_id: str, diff_ids: list[str],
                        cache: PartsCache, level: int, progress: Progress) -> None:
    image_hex = image_id.split(":")[1]
    stream = _IteratorFile(iter(client.api.get_image(reference, chunk_size=CHUNK)))
    with tarfile.open(fileobj=io.BufferedReader(stream, CHUNK), mode="r|") as save:
        for member in save:
            if not member.isreg():
                continue
            name = member.name
            if name in (f"{image_hex}.json", f"blobs/sha256/{image_hex}"):
                data = save.extractfile(member).read()
                if "sha256:" + hashlib.sha256(data).hexdigest() != image_id:
                    raise BundleError(f"the engine's config of {reference} does not hash to "
                                      f"its id {image_id}")
                _write_atomically(cache.config(image_id), data)
            elif name.endswith("/layer.tar") or (name.startswith("blobs/sha256/")
                                                   and f"sha256:{name[13:]}" in diff_ids):
                _store_layer(save.extractfile(member), cache, level, progress)


def export_image(client: Any, name: str, reference: str, cache: PartsCache, level: int,
                 progress: Progress) -> Image:
    """The bundle's description of one image, with its parts in the cache."""
    import docker.errors

    try:
        inspected = client.api.inspect_image(reference)
    except docker.errors.ImageNotFound:
        raise BundleError(f"image {reference} is not in the Docker engine: build it first "
                          "(make images)") from None
    image_id, diff_ids = inspected["Id"], list(inspected["RootFS"]["Layers"])
    if not cache.config(image_id).exists() or not all(map(cache.has_layer, diff_ids)):
        _save_missing_parts(client, reference, image_id, diff_ids, cache, level, progress)
    missing = [d for d in diff_ids if not cache.has_layer(d)]
    if missing or not cache.config(image_id).exists():
        raise BundleError(f"the engine's export of {reference} lacked "
                          f"{'layer ' + missing[0] if missing else 'its config'}")
    if not cache.sbom(image_id).exists():
        rows = client.containers.run(image_id, ["-c", sbom.inventory_script()],
                                     entrypoint="python3", user="0", network_mode="none",
                                     remove=True, stdout=True, stderr=False)
        _write_atomically(cache.sbom(image_id),
                          sbom.cyclonedx(name, reference, image_id, json.loads(rows)))
    return Image(name, reference, image_id,
                 tuple(Layer(d, cache.layer_size(d)) for d in diff_ids))
