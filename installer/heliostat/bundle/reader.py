"""Read a bundle front to back, checking every member against the manifest as it
streams past. Nothing is unpacked to disk; memory holds one chunk at a time."""

from __future__ import annotations

import hashlib
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from heliostat.bundle import signature, tar_stream
from heliostat.bundle.layout import (
    CHUNK,
    MANIFEST,
    MANIFEST_DIGEST,
    SIGNATURE,
    BundleError,
    Manifest,
    Member,
    check_member_name,
)

MAX_MANIFEST = 16 << 20


class CheckedStream:
    """A member's bytes, hashed as they are read; `finish` drains the rest and compares."""

    def __init__(self, source: IO[bytes], member: Member) -> None:
        self._source, self.member = source, member
        self._digest, self._read = hashlib.sha256(), 0

    def read(self, size: int = CHUNK) -> bytes:
        data = self._source.read(size)
        self._digest.update(data)
        self._read += len(data)
        return data

    def finish(self) -> None:
        while self.read(CHUNK):
            pass
        if self._read != self.member.size or self._digest.hexdigest() != self.member.sha256:
            raise BundleError(f"member {self.member.name} is damaged: its sha256 is not the "
                              "one the manifest lists")


def _kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f"a symbolic link to {info.linkname!r}"
    if info.islnk():
        return f"a hard link to {info.linkname!r}"
    return "a directory" if info.isdir() else "not a regular file"


class BundleReader:
    """`with BundleReader(path, key) as bundle:` reads the manifest (and checks the
    signature when a key is given); `bundle.members()` then yields every other member."""

    def __init__(self, path: Path, public_key: Path | None = None) -> None:
        self.path, self.public_key = path, public_key
        self.signed = False

    def __enter__(self) -> BundleReader:
        try:
            self._file = self.path.open("rb", buffering=CHUNK)
        except OSError as error:
            raise BundleError(f"cannot open {self.path}: {error.strerror}") from None
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise
        return self

    def _open(self) -> None:
        self._entries = tar_stream.members(self._file)
        info, data = self._advance()
        if info is None or info.name != MANIFEST or not info.isreg():
            raise BundleError(f"{self.path} is not a heliostat bundle (it does not start "
                              f"with {MANIFEST})")
        if info.size > MAX_MANIFEST:
            raise BundleError(f"{self.path}: the manifest is implausibly large")
        self.manifest_bytes = data.read(info.size)
        self.digest = "sha256:" + hashlib.sha256(self.manifest_bytes).hexdigest()
        info, data = self._advance()
        if info is None or info.name != MANIFEST_DIGEST or not info.isreg():
            raise BundleError(f"{self.path} lacks {MANIFEST_DIGEST} after its manifest")
        if data.read(256).strip().decode("ascii", "replace") != self.digest:
            raise BundleError(f"{self.path}: the manifest is damaged (its sha256 is not the "
                              f"one {MANIFEST_DIGEST} records)")
        self.manifest = Manifest.from_bytes(self.manifest_bytes)
        self._next = self._advance()
        signature_bytes = None
        info, data = self._next
        if info is not None and info.name == SIGNATURE and info.isreg():
            signature_bytes = data.read(4096)
            self.signed = True
            self._next = self._advance()
        if self.public_key is not None:
            if signature_bytes is None:
                raise BundleError(f"{self.path} is not signed, but a key was given to check "
                                  "its signature with")
            signature.check(self.manifest_bytes, signature_bytes, self.public_key)

    def __exit__(self, *exc: Any) -> None:
        self._file.close()

    def _advance(self) -> tuple[tarfile.TarInfo | None, Any]:
        try:
            return next(self._entries)
        except StopIteration:
            return None, None
        except OSError as error:
            raise BundleError(f"cannot read {self.path}: {error.strerror}") from None

    def members(self) -> Iterator[CheckedStream]:
        """Each member in file order, as a stream the caller may read; when the caller
        moves on, the rest is drained and the digest checked. Raises BundleError on the
        first member that is damaged, unexpected, unsafe or missing."""
        expected = {m.name: m for m in self.manifest.members}
        seen: set[str] = set()
        info, data = self._next
        while info is not None:
            check_member_name(info.name)
            if info.name in seen:
                raise BundleError(f"member {info.name} appears twice")
            if not info.isreg():
                raise BundleError(f"member {info.name} is {_kind(info)}; a bundle holds "
                                  "regular files only")
            if info.name not in expected:
                raise BundleError(f"member {info.name} is not in the manifest")
            seen.add(info.name)
            stream = CheckedStream(data, expected[info.name])
            yield stream
            stream.finish()
            info, data = self._advance()
        missing = [name for name in expected if name not in seen]
        if missing:
            raise BundleError(f"{self.path} lacks {len(missing)} member(s) its manifest "
                              f"lists, first {missing[0]} (a truncated or incomplete bundle)")


def verify(path: Path, public_key: Path | None = None, version: str | None = None
           ) -> dict[str, Any]:
    """Check every byte of the bundle; returns what was checked."""
    started = time.monotonic()
    with BundleReader(path, public_key) as bundle:
        if version is not None and bundle.manifest.version != version:
            raise BundleError(f"{path} is heliostat {bundle.manifest.version}, not the "
                              f"pinned {version}")
        for _ in bundle.members():
            pass
        manifest = bundle.manifest
        signed, digest = bundle.signed, bundle.digest
    seconds = time.monotonic() - started
    size = path.stat().st_size
    return {"file": str(path), "valid": True, "platform": manifest.platform,
            "version": manifest.version, "digest": digest, "bytes": size,
            "images": len(manifest.images), "members": len(manifest.members) + 2 + signed,
            "signature": ("valid" if public_key else "present, not checked (no --key)")
            if signed else "none",
            "seconds": round(seconds, 3),
            "mb_per_second": round(size / 1e6 / max(seconds, 1e-9), 1)}
