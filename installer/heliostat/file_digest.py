"""The sha256 of a file, read in blocks: what the bundle records of each member and what
the SSH transport checks a staged upload against."""

from __future__ import annotations

import hashlib
from pathlib import Path

READ_SIZE = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(READ_SIZE):
            digest.update(block)
    return digest.hexdigest()
