"""Where the test bed's artifacts live and which versions it pins.

The values come from `testbed.env`, the same file `provision.sh` reads, so the fixtures look for
exactly what provisioning made.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

INFRA = Path(__file__).resolve().parent
PROVISION_HINT = "run `make testbed` (bash tests/infra/provision.sh) to provision it"


class NotProvisioned(RuntimeError):
    """A component the test needs is missing or does not start; the message says which."""


@functools.cache
def pinned() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (INFRA / "testbed.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def cache_dir() -> Path:
    return Path(os.environ.get("HELIOSTAT_DEV_CACHE", "/var/cache/heliostat-dev"))


def kafka_lib() -> Path:
    return cache_dir() / f"kafka-{pinned()['KAFKA_VERSION']}" / "lib"


def postgres_bin() -> Path:
    return Path(f"/usr/lib/postgresql/{pinned()['POSTGRES_MAJOR']}/bin")


def postgres_template() -> Path:
    return cache_dir() / f"postgres-{pinned()['POSTGRES_MAJOR']}" / "template"


def ssh_keys() -> Path:
    return cache_dir() / "ssh"


def require(path: Path, what: str) -> Path:
    """`path` if it exists, else a NotProvisioned error naming the component."""
    if not path.exists():
        raise NotProvisioned(f"not provisioned: {what} ({path} is missing); {PROVISION_HINT}")
    return path
