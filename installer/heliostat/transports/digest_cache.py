"""sha256 digests of the files heliostat ships, remembered on the workstation by path, size,
inode and modification time: a multi-GB bundle or the zipapp is not read again for every
command, only when it changed."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from heliostat.file_digest import sha256_file


def default_cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "heliostat" / "sha256.json"


def _identity(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_size, status.st_ino, status.st_mtime_ns]


def cached_sha256(path: Path, cache_file: Path | None = None) -> str:
    cache_file = cache_file or default_cache_file()
    key = str(path.resolve())
    identity = _identity(path)
    try:
        entries = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        entries = {}
    if not isinstance(entries, dict):
        entries = {}
    entry = entries.get(key)
    if isinstance(entry, dict) and entry.get("identity") == identity:
        return str(entry["sha256"])
    digest = sha256_file(path)
    if _identity(path) != identity:
        return digest  # changed while it was read: do not remember either state
    entries[key] = {"identity": identity, "sha256": digest}
    # Best effort: a read-only home only costs reading the file again next time.
    with contextlib.suppress(OSError):
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache_file.parent, delete=False,
                                         suffix=".tmp") as out:
            json.dump(entries, out)
        os.replace(out.name, cache_file)
    return digest
