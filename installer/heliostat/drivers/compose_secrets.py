"""The platform's secrets on a Docker host: one file each under `<state dir>/secrets/`.

A generated secret is made at first install and kept from then on; one read from a file
on the installing host (an external store's password) is copied in at every install or
upgrade, so a changed password takes effect. The directory is 0700 and every file 0600,
root's; containers mount per-user copies (compose_files). Values are returned to the
caller only to hash them for the ledger: nothing here prints or logs one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from heliostat import secret_values
from heliostat.drivers.compose_files import StateFileError, create_file, write_file

SECRETS = "secrets"


def secrets_directory(state_dir: Path) -> Path:
    return state_dir / SECRETS


def ensure_secrets(declared: Mapping[str, Mapping[str, Any]], state_dir: Path) -> dict[str, str]:
    """Every declared secret present as a file; returns name -> value."""
    directory = secrets_directory(state_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise StateFileError(f"could not create {directory}: {exc.strerror or exc}") from None
    values = {}
    for name, spec in sorted(declared.items()):
        path = directory / name
        if spec.get("from_file"):
            value = secret_values.read_source(name, Path(str(spec["from_file"])).expanduser())
            if _read(path) != value:
                write_file(path, value.encode("utf-8"), 0o600)
        else:
            if _read(path) is None:
                # Created exclusively: of two commands racing at a first install, one
                # value wins and both go on with it.
                value = secret_values.generate(str(spec.get("generate", "token")))
                create_file(path, value.encode("utf-8"), 0o600)
            value = _read(path) or ""
        values[name] = value
    return values


def read_secret(state_dir: Path, name: str) -> str | None:
    return _read(secrets_directory(state_dir) / name)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
