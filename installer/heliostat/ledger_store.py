"""Where a target keeps its release ledger: named documents, and the lock's lease.

`LedgerStore` is what `Ledger` needs from a target; `FileLedgerStore` keeps it in a
directory on the host (Compose; `/var/lib/heliostat/<platform>/`). A Kubernetes store
would keep the same documents in Secrets of the platform's namespace.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from heliostat.ledger_lock import Holder, Lease, LeaseLost, LedgerError, LockHeld

DEFAULT_ROOT = Path("/var/lib/heliostat")
LEASE = "lease.json"  # the lock's current lease; absent while nobody holds the lock
GUARD = "lock"  # an empty file, flock'ed for the moment a lease is read and written
GUARD_TIMEOUT = 10.0  # seconds; the guard is held for milliseconds at a time
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class LedgerWriteError(LedgerError):
    def __init__(self, path: Path, error: OSError, *, replaced: bool = False) -> None:
        reason = error.strerror or str(error)
        if replaced:  # the rename happened, only the directory's fsync failed
            consequence = "it was written but may not survive a power loss"
        else:
            consequence = "the ledger keeps its previous state"
        super().__init__(f"could not write {path}: {reason}; {consequence}. "
                         "Fix that (free space on its filesystem?) and run the command again.")
        self.path = path


class LedgerCorrupt(LedgerError):
    """A ledger file does not parse. Our writes are atomic, so something else changed it."""

    def __init__(self, path: Path | str, detail: str) -> None:
        super().__init__(f"{path} is not a valid heliostat ledger file ({detail}); "
                         "was it edited by hand? Restore it from a backup or remove it.")


class LedgerStore(Protocol):
    """Atomic named documents and a lease lock, kept on the target."""

    location: str  # where, for messages: a directory, a namespace

    def read(self, name: str) -> bytes | None:
        """The document's bytes, or None if there is none by that name."""
        ...

    def write(self, name: str, data: bytes) -> None:
        """Replace the document atomically: a reader sees all of the old bytes or all of
        the new, also after a crash. Raises LedgerWriteError and changes nothing on failure."""
        ...

    def names(self) -> list[str]:
        """Every document's name, sorted."""
        ...

    def write_blob(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A large document (a data dump), written as a stream: `with store.write_blob(n)
        as out: out.write(...)`. It exists under `name` only once the block ends without
        an error; until then, and after a failure, the store is as it was. Raises
        LedgerWriteError."""
        ...

    def open_blob(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """Read a blob as a stream; FileNotFoundError when there is none by that name."""
        ...

    def remove(self, name: str) -> None:
        """Delete a document or blob; no error if it is already gone."""
        ...

    def acquire(self, holder: Holder, ttl: float) -> Lease:
        """Take the lock for `ttl` seconds. Raises LockHeld while another live lease holds it;
        takes over a lease that ran out or whose holder is provably gone. Of any number of
        processes racing here, exactly one wins."""
        ...

    def renew(self, lease: Lease, ttl: float) -> Lease:
        """Extend our lease to `ttl` seconds from now; LeaseLost if another took it over."""
        ...

    def release(self, lease: Lease) -> None:
        """Give the lock back, if it is still ours; otherwise leave it alone."""
        ...


class FileLedgerStore:
    """A directory of JSON documents, mode 0700, files 0600, every write fsynced.

    The lock is `lease.json`, read and written only while holding an flock on `lock`:
    the kernel lets one process at a time in, and drops the flock when its process
    dies, so the check-and-take of a lease is race-free and can't be left locked.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.location = str(self.root)

    @classmethod
    def for_platform(cls, platform: str, base: Path = DEFAULT_ROOT) -> FileLedgerStore:
        return cls(base / _checked(platform))

    def read(self, name: str) -> bytes | None:
        try:
            return (self.root / _checked(name)).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> None:
        if name in (LEASE, GUARD):
            raise ValueError(f"{name} is the lock's, not a document")
        path = self.root / _checked(name)
        self._make_root()
        write_atomically(path, data)

    @contextlib.contextmanager
    def write_blob(self, name: str) -> Iterator[BinaryIO]:
        path = self.root / _checked(name)
        self._make_root()
        try:
            fd, temporary = tempfile.mkstemp(dir=self.root, prefix=f".{name}.", suffix=".tmp")
        except OSError as exc:
            raise LedgerWriteError(path, exc) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
            fsync_directory(self.root)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            if isinstance(exc, OSError):
                raise LedgerWriteError(path, exc) from exc
            raise

    @contextlib.contextmanager
    def open_blob(self, name: str) -> Iterator[BinaryIO]:
        with open(self.root / _checked(name), "rb") as blob:
            yield blob

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / _checked(name)).unlink()
            fsync_directory(self.root)

    def names(self) -> list[str]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries
                      if e.is_file(follow_symlinks=False) and _NAME.fullmatch(e.name)
                      and e.name not in (LEASE, GUARD))

    def acquire(self, holder: Holder, ttl: float) -> Lease:
        with self._guard():
            current = self._read_lease()
            if current is not None and not current.expired() and not current.holder.is_gone():
                raise LockHeld(current, self.location)
            lease = Lease.grant(holder, ttl)
            self._write_lease(lease)
            return lease

    def renew(self, lease: Lease, ttl: float) -> Lease:
        with self._guard():
            current = self._read_lease()
            if current is None or current.token != lease.token:
                raise LeaseLost(lease, current, self.location)
            renewed = lease.extended(ttl)
            self._write_lease(renewed)
            return renewed

    def release(self, lease: Lease) -> None:
        with self._guard():
            current = self._read_lease()
            if current is not None and current.token == lease.token:
                (self.root / LEASE).unlink()
                fsync_directory(self.root)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        self._make_root()
        path = self.root / GUARD
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + GUARD_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    # Held for milliseconds normally; a process stopped inside it must
                    # not hang us forever.
                    if time.monotonic() > deadline:
                        raise LedgerError(f"{path} stays locked by another process; is a "
                                          "heliostat command stopped (Ctrl-Z)?") from None
                    time.sleep(0.005)
            yield
        finally:
            os.close(fd)  # closing drops the flock

    def _read_lease(self) -> Lease | None:
        path = self.root / LEASE
        try:
            return Lease.from_json(json.loads(path.read_bytes()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise LedgerCorrupt(path, str(exc)) from None

    def _write_lease(self, lease: Lease) -> None:
        write_atomically(self.root / LEASE, json.dumps(lease.to_json(), indent=2).encode())

    def _make_root(self) -> None:
        """Create the root and any missing parent with mode 0700 (ledger files are private)."""
        missing = [p for p in (self.root, *self.root.parents) if not p.exists()]
        for directory in reversed(missing):
            with contextlib.suppress(FileExistsError):
                directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)  # mkdir's mode passes through the umask
            fsync_directory(directory.parent)
        if stat.S_IMODE(self.root.stat().st_mode) != 0o700:
            os.chmod(self.root, 0o700)


def write_atomically(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename over `path`, fsync the directory: after any failure or
    crash `path` holds all of its old bytes or all of the new ones, never a mix."""
    try:
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp")  # mode 0600
    except OSError as exc:
        raise LedgerWriteError(path, exc) from exc
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise LedgerWriteError(path, exc) from exc
        raise
    try:
        fsync_directory(path.parent)
    except OSError as exc:
        raise LedgerWriteError(path, exc, replaced=True) from exc


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checked(name: str) -> str:
    """A document or platform name: one path component, never hidden (temp files are)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a valid ledger name: {name!r}")
    return name
