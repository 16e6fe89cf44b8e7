"""Load a bundle's images into a Docker engine, straight from the bundle file.

The bundle is read once, front to back; the images the engine lacks are turned on the
fly into one `docker save`-format stream (layers decompressed, each checked against
its diff_id) that the engine's load endpoint receives. Docker unpacks the whole stream
before it registers anything, so a damaged bundle stops the upload and loads nothing.
Works with any engine that loads `docker save` archives (Docker 20.10 included)."""

from __future__ import annotations

import contextlib
import json
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

from heliostat.bundle.layout import CHUNK, BundleError, Image
from heliostat.bundle.reader import BundleReader

# (image name, bytes done, bytes total) after each chunk of that image's layers
Progress = Callable[[str, int, int], None]
BLOCK = 512


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def _padding(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def _file_entry(name: str, data: bytes) -> Iterator[bytes]:
    yield _header(name, len(data))
    yield data + _padding(len(data))


def present_ids(client: Any, images: tuple[Image, ...]) -> set[str]:
    import docker.errors

    present = set()
    for image in images:
        try:
            client.api.inspect_image(image.id)
            present.add(image.id)
        except docker.errors.ImageNotFound:
            pass
    return present


def _decompressed(reader: Any, image: str) -> bytes:
    import zstandard

    try:
        return reader.read(CHUNK)
    except zstandard.ZstdError as error:
        raise BundleError(f"a layer of image {image} is damaged ({error})") from None


def _save_stream(bundle: BundleReader, wanted: list[Image], progress: Progress
                 ) -> Iterator[bytes]:
    import zstandard

    configs = {image.config: image for image in wanted}
    owner: dict[str, tuple[Image, int]] = {}  # layer member -> (image shown, its size)
    for image in wanted:
        for layer in image.layers:
            owner.setdefault(layer.member, (image, layer.size))
    totals = {image.name: sum(s for i, s in owner.values() if i is image) for image in wanted}
    done = dict.fromkeys(totals, 0)
    for name, total in totals.items():
        progress(name, 0, total)
    for stream in bundle.members():
        member = stream.member.name
        if member in configs:
            yield from _file_entry(f"{member.split('/')[1]}", stream.read(stream.member.size + 1))
        elif member in owner:
            image, size = owner[member]
            diff_hex = member.split("/")[1].split(".")[0]
            yield _header(f"{diff_hex}/layer.tar", size)
            sent = 0
            reader = zstandard.ZstdDecompressor().stream_reader(stream, read_size=CHUNK,
                                                                 read_across_frames=True)
            # The compressed bytes are checked against the manifest as they pass, and the
            # engine checks each layer against the config's diff_ids, so the
            # uncompressed bytes are not hashed a third time here.
            while chunk := _decompressed(reader, image.name):
                sent += len(chunk)
                if sent > size:
                    break
                done[image.name] += len(chunk)
                progress(image.name, done[image.name], totals[image.name])
                yield chunk
            if sent != size:
                raise BundleError(f"layer {diff_hex[:12]} of image {image.name} does not "
                                  "decompress to its recorded size: the bundle is damaged")
            yield _padding(size)
    entries = [{"Config": image.config.split("/")[1], "RepoTags": [image.reference],
                "Layers": [f"{la.diff_id[7:]}/layer.tar" for la in image.layers]}
               for image in wanted]
    yield from _file_entry("manifest.json", json.dumps(entries).encode())
    yield b"\0" * (2 * BLOCK)


def _prefetched(chunks: Iterator[bytes], depth: int = 16) -> Iterator[bytes]:
    """Produce `chunks` in a thread (reading, checking and decompressing release the GIL)
    while the caller sends the previous ones to the engine."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                queue.put(chunk)
            queue.put(end)
        except BaseException as error:  # handed to the consumer, which raises it
            queue.put(error)

    worker = threading.Thread(target=produce, name="bundle-load", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(Empty):
                queue.get_nowait()
            worker.join(timeout=0.05)


def load_into_engine(path: Path, client: Any, public_key: Path | None = None,
                     progress: Progress = lambda name, done, total: None) -> dict[str, Any]:
    """Load every image of the bundle that the engine lacks; tag those it has."""
    import docker.errors

    started = time.monotonic()
    with BundleReader(path, public_key) as bundle:
        images = bundle.manifest.images
        present = present_ids(client, images)
        wanted = [image for image in images if image.id not in present]
        if wanted:
            try:
                stream = _prefetched(_save_stream(bundle, wanted, progress))
                for line in client.api.load_image(stream):
                    if "error" in line:
                        raise BundleError(f"the Docker engine refused the images: "
                                          f"{line['error']}")
            except docker.errors.APIError as error:
                raise BundleError(f"the Docker engine refused the images: "
                                  f"{error.explanation or error}") from None
        else:
            for _ in bundle.members():  # still check every byte
                pass
    for image in images:
        if image.id in present:
            # The same image under another tag (or none): give it the bundle's name.
            repository, tag = image.reference.rsplit(":", 1)
            client.api.tag(image.id, repository, tag)
    missing = [i.reference for i in images if i.id not in present_ids(client, images)]
    if missing:
        raise BundleError(f"the engine does not hold {', '.join(missing)} after the load")
    return {"file": str(path), "loaded": [i.name for i in wanted],
            "already_present": [i.name for i in images if i.id in present],
            "seconds": round(time.monotonic() - started, 1)}
