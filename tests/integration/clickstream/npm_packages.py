"""JavaScript libraries from the npm registry for the clickstream client tests.

Each folder here (``sdk_node``, ``sdk_browser``) pins its packages with a lock file;
:func:`installed` runs ``npm ci`` once into the dev cache, in a directory named after
the folder and a hash of its manifest and lock file, and reuses it afterwards. Without
Node.js and npm, or without the registry on first use, the test fails and says so.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.infra.settings import cache_dir

NODE_MAJOR = 20  # the oldest Node.js the pinned libraries declare in "engines"


def node() -> str:
    """The ``node`` binary, checked for its version, or a failed test."""
    found = shutil.which("node")
    if not found or not shutil.which("npm"):
        pytest.fail(f"this test needs Node.js {NODE_MAJOR}+ and npm on PATH "
                    "(Debian: apt-get install nodejs npm)", pytrace=False)
    version = subprocess.run([found, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    major = version.lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < NODE_MAJOR:
        pytest.fail(f"this test needs Node.js {NODE_MAJOR}+, found {version or 'none'}",
                    pytrace=False)
    return found


def installed(folder: Path) -> Path:
    """The directory whose ``node_modules`` holds exactly ``folder``'s lock file."""
    node()
    digest = hashlib.sha256((folder / "package.json").read_bytes()
                            + (folder / "package-lock.json").read_bytes()).hexdigest()[:12]
    target = cache_dir() / "npm-packages" / f"{folder.name}-{digest}"
    if (target / ".complete").exists():
        return target
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(folder / name, staging / name)
    # `npm ci` installs the lock file as it is (integrity-checked); no install scripts.
    done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                          cwd=staging, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        pytest.fail(f"could not install {folder.name}'s packages from the npm registry "
                    f"into {target}:\n{done.stderr[-2000:]}", pytrace=False)
    (staging / ".complete").touch()
    try:
        staging.rename(target)  # whole or not at all, so a broken install is never reused
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # a parallel run got there first
    return target
