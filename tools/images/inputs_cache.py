"""The content-addressed cache of build inputs: each file stored once under its sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from pathlib import Path

CHUNK = 1 << 20


def cache_root() -> Path:
    root = Path(os.environ.get("HELIOSTAT_DEV_CACHE", "/var/cache/heliostat-dev")) / "image-inputs"
    root.mkdir(parents=True, exist_ok=True)
    return root


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stored(sha256: str) -> Path:
    return cache_root() / "sha256" / sha256


def store_file(path: Path, sha256: str) -> Path:
    """Move a fetched file into the cache after checking it is the one the lock names."""
    actual = file_sha256(path)
    if actual != sha256:
        path.unlink(missing_ok=True)
        raise ValueError(f"{path.name}: sha256 {actual} but the lock says {sha256}")
    target = stored(sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target


def download(url: str, sha256: str) -> Path:
    """The cached file with this digest, downloading `url` first when it is missing."""
    target = stored(sha256)
    if target.exists():
        return target
    partial = cache_root() / "partial" / sha256
    partial.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out, CHUNK)
    return store_file(partial, sha256)


def download_new(url: str) -> str:
    """Download `url` into the cache and return its sha256: for locking, where the
    digest is what is being learnt."""
    partial = cache_root() / "partial" / hashlib.sha256(url.encode()).hexdigest()
    partial.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
        shutil.copyfileobj(response, out, CHUNK)
    return store_file(partial, file_sha256(partial)).name


def link_into(directory: Path, name: str, sha256: str) -> None:
    """Give a cached file its real name in a build's input folder (a hard link: no copy)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    try:
        os.link(stored(sha256), target)
    except OSError:
        shutil.copyfile(stored(sha256), target)
