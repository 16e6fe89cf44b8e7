"""Files under a platform's state directory that its containers mount read-only.

    <state dir>/                    0700 (the ledger's directory too)
      configs/<name>-<digest>       0644: a config's content; a new content is a new file,
                                    so a container being swapped out keeps its own
      secrets/<name>                0600: a secret's value (compose_secrets keeps these)
      secrets/uid-<uid>/<name>      0600, owned by <uid>: the copy a container running as
                                    <uid> mounts; images never run as root, and a file of
                                    mode 0600 is readable only by its owner
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CONFIGS = "configs"


class StateFileError(Exception):
    """A file under the state directory could not be written or read."""


def write_config(state_dir: Path, config: Mapping[str, Any]) -> Path:
    """The config's file, written once (its name carries its content's digest)."""
    directory = state_dir / CONFIGS
    path = directory / f"{config['source']}-{config['digest'][:16]}"
    if not path.exists():
        _make_directory(directory, 0o755)
        write_file(path, config["content"].encode("utf-8"), 0o644)
    return path


def remove_configs(state_dir: Path) -> None:
    shutil.rmtree(state_dir / CONFIGS, ignore_errors=True)


def secret_for_user(master: Path, uid: int, gid: int) -> Path:
    """The copy of the secret file `master` that a container running as uid:gid mounts."""
    try:
        value = master.read_bytes()
    except FileNotFoundError:
        raise StateFileError(f"secret file {master} is missing; `heliostat install` or "
                             "`upgrade` generates it") from None
    if uid == 0:
        return master
    directory = master.parent / f"uid-{uid}"
    path = directory / master.name
    with contextlib.suppress(FileNotFoundError):
        if path.read_bytes() == value and path.stat().st_uid == uid:
            return path
    _make_directory(directory, 0o700)
    write_file(path, value, 0o600, owner=(uid, gid))
    return path


def create_file(path: Path, data: bytes, mode: int) -> bool:
    """Create `path` with `data` unless it exists: False if another process was first.
    The file appears whole (written aside, then hard-linked into place), never half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    write_file(temporary, data, mode)
    try:
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        raise StateFileError(f"could not create {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def write_file(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Write `path` atomically (temp file, fsync, rename) with `mode` from the start."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, mode)
            if owner is not None:
                os.chown(temporary, *owner)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    except OSError as exc:
        raise StateFileError(f"could not write {path}: {exc.strerror or exc}") from None


def _make_directory(directory: Path, mode: int) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, mode)
    except OSError as exc:
        raise StateFileError(f"could not create {directory}: {exc.strerror or exc}") from None
