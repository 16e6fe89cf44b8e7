"""Make and damage bundle files for the bundle tests."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

from heliostat.bundle.layout import MANIFEST, MANIFEST_DIGEST

Member = tuple[tarfile.TarInfo, bytes]


def members(bundle: Path) -> list[Member]:
    with tarfile.open(bundle) as archive:
        return [(info, archive.extractfile(info).read() if info.isreg() else b"")
                for info in archive.getmembers()]


def write(path: Path, entries: list[Member]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in entries:
            if info.isreg():
                fresh = tarfile.TarInfo(info.name)
                fresh.size = len(data)
                archive.addfile(fresh, io.BytesIO(data))
            else:
                archive.addfile(info)
    return path


def rewritten(bundle: Path, out: Path, change: Callable[[list[Member]], list[Member]]) -> Path:
    return write(out, change(members(bundle)))


def edit_manifest(entries: list[Member], edit: Callable[[dict], None]) -> list[Member]:
    """Change the manifest and write its digest to match, as a forger would."""
    info, data = entries[0]
    assert info.name == MANIFEST and entries[1][0].name == MANIFEST_DIGEST
    document = json.loads(data)
    edit(document)
    data = json.dumps(document).encode()
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}\n".encode()
    return [(info, data), (entries[1][0], digest), *entries[2:]]


def link(name: str, target: str, hard: bool) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, b""


def flip_byte(bundle: Path, out: Path, offset: int) -> Path:
    data = bytearray(bundle.read_bytes())
    data[offset] ^= 0x01
    out.write_bytes(bytes(data))
    return out


def last_layer_damaged(bundle: Path, out: Path) -> Path:
    """The bundle with one byte of its last layer member flipped, its manifest unchanged."""
    entries = members(bundle)
    last = max(i for i, (info, _) in enumerate(entries) if info.name.startswith("layers/"))
    info, data = entries[last]
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0xFF
    return write(out, [*entries[:last], (info, bytes(changed)), *entries[last + 1:]])
