"""The ledger's lock: a lease that names its holder, so two applies never run at once.

A lease runs out unless its holder renews it. A holder that is killed stops renewing,
so the next command takes the lock over once the lease has run out — or at once when
it can prove the holder gone (a process of this host that no longer exists). A lock is
never left stuck. How a lease is stored, race-free, is the store's job
(`FileLedgerStore` for files); what a lease is and how it is kept alive is here.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from heliostat.ledger_store import LedgerStore

DEFAULT_TTL = 30.0  # seconds; a keeper renews at a third of it


class LedgerError(Exception):
    """The ledger or its lock cannot do what was asked; the message says what to do."""


class LockHeld(LedgerError):
    def __init__(self, lease: Lease, location: str) -> None:
        left = max(0, round(lease.expires_at - time.time()))
        super().__init__(
            f"another heliostat is changing this platform: {lease.holder.describe()}. "
            f"Wait for it to finish. If it was killed, its lease on {location} runs out "
            f"in {left}s and the next command takes the lock over.")
        self.lease = lease


class LeaseLost(LedgerError):
    def __init__(self, lease: Lease, current: Lease | None, location: str) -> None:
        by = f"taken over by {current.holder.describe()}" if current else "released"
        super().__init__(
            f"lost the lock of this platform ({location}): it was {by} after this "
            f"process's lease ran out at {_clock(lease.expires_at)}. Stopping here; "
            "`heliostat status` shows where the platform stands.")
        self.lease = lease
        self.current = current


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: shown to whoever else wants the lock."""

    host: str
    pid: int
    command: str  # `install`, `upgrade`, `commander: image update event-api`
    started_at: float  # when it took the lock, seconds since the epoch
    # Boot, pid namespace, pid and start time of the process: names it for its whole
    # life, so a reused pid is not mistaken for it. None where /proc is not readable.
    process: str | None

    @classmethod
    def this_process(cls, command: str) -> Holder:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, command, time.time(), _process_identity(pid))

    def describe(self) -> str:
        return (f"`{self.command}` (pid {self.pid} on {self.host}, "
                f"since {_clock(self.started_at)})")

    def is_gone(self) -> bool:
        """True only when provable: the holder ran on this host, in this boot and pid
        namespace, and that process no longer exists. Anything else waits for expiry."""
        here = _process_identity(os.getpid())
        if self.host != socket.gethostname() or not self.process or here is None:
            return False
        if _boot_and_namespace(self.process) != _boot_and_namespace(here):
            return False
        return _process_identity(self.pid) != self.process


@dataclass(frozen=True)
class Lease:
    holder: Holder
    token: str  # tells this lease from any later one, even one of the same process
    expires_at: float  # seconds since the epoch: other processes compare it with their clock

    @classmethod
    def grant(cls, holder: Holder, ttl: float) -> Lease:
        return cls(holder, secrets.token_hex(16), time.time() + ttl)

    def extended(self, ttl: float) -> Lease:
        return replace(self, expires_at=time.time() + ttl)

    def expired(self) -> bool:
        return time.time() >= self.expires_at

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lease:
        return cls(Holder(**data["holder"]), data["token"], float(data["expires_at"]))


class LeaseKeeper:
    """Holds the lock for a `with` block, renewing the lease from a thread.

    If this process is stopped (SIGSTOP, a frozen VM) past its lease, another command
    may take the lock over; the next renewal finds that out, and `check()` raises
    LeaseLost from then on. Whoever applies calls `check()` before each step.
    """

    def __init__(self, store: LedgerStore, command: str, ttl: float = DEFAULT_TTL) -> None:
        self._store = store
        self._command = command
        self._ttl = ttl
        self._stop = threading.Event()
        self._lost: LedgerError | None = None
        self._thread: threading.Thread | None = None
        self.lease: Lease | None = None

    def __enter__(self) -> LeaseKeeper:
        self.lease = self._store.acquire(Holder.this_process(self._command), self._ttl)
        self._thread = threading.Thread(target=self._renew_until_stopped, daemon=True,
                                        name="heliostat-lease")
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lease is not None:
            self._store.release(self.lease)

    def check(self) -> None:
        if self._lost is not None:
            raise self._lost

    def _renew_until_stopped(self) -> None:
        assert self.lease is not None
        while not self._stop.wait(self._ttl / 3):
            try:
                self.lease = self._store.renew(self.lease, self._ttl)
            except LeaseLost as exc:
                self._lost = exc
                return
            except (OSError, LedgerError) as exc:
                # A full disk or a hiccup: keep trying while the lease still holds.
                if self.lease.expired():
                    self._lost = LedgerError(f"could not renew the lock's lease: {exc}")
                    return


_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _process_identity(pid: int) -> str | None:
    """`boot/pid-namespace/pid/start-ticks` of a running process of this host, or None."""
    try:
        boot = _BOOT_ID.read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    if fields[0] == "Z":  # killed and not yet reaped by its parent: gone all the same
        return None
    return f"{boot}/{namespace}/{pid}/{fields[19]}"  # field 22 of proc(5): start time


def _boot_and_namespace(identity: str) -> str:
    return identity.rsplit("/", 2)[0]


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
