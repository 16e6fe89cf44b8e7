"""Python wheels: fetch exactly what a hash-pinned requirements file names, for the
images' interpreter (Debian bookworm's CPython 3.11), wheels only — images get no
compilers, so nothing may need building."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from tools.images import inputs_cache

PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux_2_36_x86_64", "manylinux_2_34_x86_64", "manylinux_2_28_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")
# pip itself, run from its wheel inside the build to install the others; never in an image.
PIP = "pip==24.3.1 --hash=sha256:3790624780082365f47549d032f3770eeb2b1e8bd1f7b2e02dace1afa361b4ed"


def _download(requirements: Path, directory: Path) -> None:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--require-hashes", "--python-version", PYTHON_VERSION,
               "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none",
               *(arg for p in PLATFORMS for arg in ("--platform", p)),
               "-r", str(requirements), "-d", str(directory)]
    subprocess.run(command, check=True)


def fetch(requirements: Path) -> Path:
    """The cache folder holding every wheel of `requirements` (downloaded once per lock)."""
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    directory = inputs_cache.cache_root() / "wheels" / key
    if not (directory / ".complete").exists():
        directory.mkdir(parents=True, exist_ok=True)
        _download(requirements, directory)
        (directory / ".complete").touch()
    return directory


def fetch_pip() -> Path:
    """The folder holding the pinned pip wheel."""
    directory = inputs_cache.cache_root() / "pip" / hashlib.sha256(PIP.encode()).hexdigest()[:16]
    if not (directory / ".complete").exists():
        directory.mkdir(parents=True, exist_ok=True)
        spec = directory / "requirements.txt"
        spec.write_text(PIP + "\n")
        _download(spec, directory)
        spec.unlink()
        (directory / ".complete").touch()
    return directory
