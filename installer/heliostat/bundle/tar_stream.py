"""A strict reader of the plain ustar archives bundles are: every header's checksum,
every padding byte and the zero blocks at the end are checked, so that one flipped
byte anywhere in the file is caught (tarfile skips padding unread)."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from heliostat.bundle.layout import CHUNK, BundleError

BLOCK = 512


class MemberData:
    """The data of the current member, `size` bytes, then its zero padding checked."""

    def __init__(self, source: BinaryIO, size: int, offset: int) -> None:
        self._source, self._left, self._offset = source, size, offset
        self._padding = -size % BLOCK

    def read(self, size: int = CHUNK) -> bytes:
        if self._left == 0:
            return b""
        data = self._source.read(min(size, self._left))
        if not data:
            raise BundleError(f"the bundle is truncated near byte {self._offset:,}")
        self._left -= len(data)
        self._offset += len(data)
        return data

    def finish(self) -> int:
        """Skip what was not read, check the padding; returns the offset after it."""
        while self.read(CHUNK):
            pass
        padding = self._source.read(self._padding)
        if len(padding) != self._padding:
            raise BundleError(f"the bundle is truncated near byte {self._offset:,}")
        if padding.strip(b"\0"):
            raise BundleError(f"the bundle is damaged near byte {self._offset:,} (padding "
                              "that should be zero is not)")
        return self._offset + self._padding


def members(source: BinaryIO) -> Iterator[tuple[tarfile.TarInfo, MemberData]]:
    offset = 0
    while True:
        block = source.read(BLOCK)
        if len(block) < BLOCK:
            raise BundleError(f"the bundle is truncated near byte {offset:,} (it ends "
                              "without the end-of-archive blocks)")
        if not block.strip(b"\0"):
            _check_end(source, offset + BLOCK)
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
        except (tarfile.HeaderError, UnicodeDecodeError) as error:
            raise BundleError(f"the bundle is damaged near byte {offset:,} (member header: "
                              f"{error})") from None
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME,
                         tarfile.GNUTYPE_LONGLINK):
            raise BundleError(f"the bundle is damaged near byte {offset:,} (an extended "
                              "header, which bundles never have)")
        data = MemberData(source, info.size if info.isreg() else 0, offset + BLOCK)
        yield info, data
        offset = data.finish()


def _check_end(source: BinaryIO, offset: int) -> None:
    """After the first zero block: a second one, then only zeros to the end of the file."""
    second = source.read(BLOCK)
    if len(second) < BLOCK:
        raise BundleError(f"the bundle is truncated near byte {offset:,}")
    rest = second
    while rest:
        if rest.strip(b"\0"):
            raise BundleError(f"the bundle is damaged near byte {offset:,} (data after the "
                              "end of the archive)")
        offset += len(rest)
        rest = source.read(CHUNK)
