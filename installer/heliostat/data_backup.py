"""Dumps of a stateful service's data: taken before a revision changes the service, kept
next to the ledger, restored on request (`rollback --restore-data`).

A service says how in the neutral model's `backup:` (postgres: `pg_dump` out, `psql`
in); the driver runs those commands inside the object (`Driver.run_in`) and the ledger
store keeps the stream (`LedgerStore.write_blob`), so this works the same on every
target. The revision that changed the service records its dump (`Revision.backups`):
the data as it was before that revision, which is the data of the revisions before it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, BinaryIO

from heliostat.driver import DataBackup, Driver, PlanStep
from heliostat.ledger import Ledger, Revision
from heliostat.ledger_store import LedgerWriteError

Progress = Callable[[str], None]
CHUNK = 1 << 20


class _Counting:
    """A writable stream that also counts and hashes what goes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.bytes = 0
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.bytes += len(data)
        self.sha256.update(data)
        return len(data)


def blob_name(revision: int, service: str) -> str:
    return f"backup-{revision:06d}-{service}.dump"


def steps_to_back_up(steps: Iterable[PlanStep], revision: Revision) -> list[PlanStep]:
    """The steps that change a running object with a `backup`, one per service, whose
    service this revision has not dumped yet (a resumed revision already may have)."""
    chosen: dict[str, PlanStep] = {}
    for step in steps:
        if (step.action in ("update", "replace") and step.live is not None
                and step.desired is not None and step.desired.backup is not None
                and step.service not in revision.backups):
            chosen.setdefault(step.service, step)
    return list(chosen.values())


def back_up(driver: Driver, ledger: Ledger, revision: Revision, step: PlanStep,
            progress: Progress) -> str | None:
    """Dump the data of `step`'s object before the revision changes it and record the dump
    on the revision. Returns why it could not, or None."""
    assert step.desired is not None and step.desired.backup is not None
    name = blob_name(revision.number, step.service)
    progress(f"  backing up {step.service} ({step.key}) before changing it")
    try:
        with ledger.store.write_blob(name) as out:
            counted = _Counting(out)
            result = driver.run_in(step.key, step.desired.backup.dump, stdout=counted)
            if result.exit_code != 0:
                raise _DumpFailed(result.exit_code, result.stderr)
    except _DumpFailed as failed:
        return (f"backing up {step.service} before changing it failed (exit {failed.code}); "
                "nothing was changed" + "".join(f"\n  | {line}" for line in failed.stderr))
    except LedgerWriteError as exc:
        return f"backing up {step.service} before changing it failed: {exc}"
    ledger.record_backup(revision.number, step.service, {
        "blob": name, "object": step.key, "revision": revision.number,
        "bytes": counted.bytes, "sha256": counted.sha256.hexdigest(),
        "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    progress(f"    {step.service} backed up: {counted.bytes / 1e6:.1f} MB in {name}")
    return None


class _DumpFailed(Exception):
    def __init__(self, code: int, stderr: tuple[str, ...]) -> None:
        super().__init__(code)
        self.code = code
        self.stderr = stderr


def backups_since(ledger: Ledger, number: int) -> dict[str, dict[str, Any]]:
    """For a rollback to revision `number`: per service, the dump taken by the first later
    revision that changed it, which holds the data as it was under `number`."""
    found: dict[str, dict[str, Any]] = {}
    for revision in ledger.revisions():
        if revision.number > number:
            for service, backup in revision.backups.items():
                found.setdefault(service, backup)
    return found


def restore(driver: Driver, ledger: Ledger, key: str, commands: DataBackup,
            backup: Mapping[str, Any], progress: Progress) -> str | None:
    """Load a dump back into the object `key`, after checking it is the dump recorded.
    Returns why it could not, or None."""
    name = str(backup["blob"])
    try:
        with ledger.store.open_blob(name) as blob:
            digest = hashlib.sha256()
            while data := blob.read(CHUNK):
                digest.update(data)
            if digest.hexdigest() != backup["sha256"]:
                return (f"{ledger.store.location}/{name} is not the dump that was taken (its "
                        "sha256 differs); not restoring it")
            blob.seek(0)
            progress(f"  restoring {key} from {name} (taken {backup['taken_at']})")
            result = driver.run_in(key, commands.restore, stdin=blob)
    except FileNotFoundError:
        return f"{ledger.store.location}/{name} is gone; it cannot be restored"
    if result.exit_code != 0:
        return (f"restoring {key} from {name} failed (exit {result.exit_code})"
                + "".join(f"\n  | {line}" for line in result.stderr))
    progress(f"    {key} restored")
    return None
