"""The release ledger: every change to a platform is a numbered revision, kept on the target.

A revision is recorded `pending` before anything is applied and marked when the apply
ends, so a revision still `pending` is one whose apply was interrupted: the next
command finds it with `pending()` and resumes or rolls it back. Revision states:

    pending  -> deployed     applied and healthy; the one deployed before it is superseded
    pending  -> failed       the apply failed and was left as it is (`--no-rollback`)
    pending  -> rolled-back  the apply failed and the platform went back to last_deployed()
    failed   -> rolled-back  a failed state kept for debugging, then rolled back
    deployed -> superseded   a later revision was deployed

Mutations happen under the lock (`Ledger.lock`); reads need none, as each document is
replaced atomically.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal, get_args

from heliostat.ledger_lock import DEFAULT_TTL, LeaseKeeper, LedgerError
from heliostat.ledger_store import LedgerCorrupt, LedgerStore

Status = Literal["pending", "deployed", "failed", "superseded", "rolled-back"]
Origin = Literal["cli", "commander", "pilot"]
FORMAT = 1  # of a revision document; bumped when its fields change meaning

_NEXT: dict[str, frozenset[str]] = {
    "pending": frozenset({"deployed", "failed", "rolled-back"}),
    "failed": frozenset({"rolled-back"}),
    "deployed": frozenset({"superseded"}),
    "superseded": frozenset(),
    "rolled-back": frozenset(),
}
_REVISION_NAME = re.compile(r"revision-(\d+)\.json")


class UnknownRevision(LedgerError):
    pass


class RevisionPending(LedgerError):
    """A new revision was asked for while an interrupted one waits to be resumed."""


@dataclass(frozen=True)
class Revision:
    number: int
    status: Status
    origin: Origin
    description: str  # `install`, `upgrade`, `rollback to 3`, `image update event-api`
    created_at: str  # ISO 8601, UTC
    updated_at: str
    bundle_version: str
    bundle_digest: str
    config: dict[str, Any]  # secret values replaced by `sha256:<hex>`
    secrets: dict[str, str]  # secret name -> `sha256:<hex>` of its value: shows rotations
    manifests: dict[str, str]  # file name -> text, as `render` writes it and drivers apply
    images: dict[str, str]  # image name -> digest
    reason: str = ""  # why it failed or was rolled back
    # service -> the dump of its data taken before this revision changed it: blob name,
    # object, bytes, sha256, taken_at (heliostat.data_backup)
    backups: dict[str, dict[str, Any]] = field(default_factory=dict)
    # service -> the backup (as in `backups`) this revision loads back once the service is
    # healthy: a `rollback --restore-data`
    restore: dict[str, dict[str, Any]] = field(default_factory=dict)


class Ledger:
    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    def lock(self, command: str, ttl: float = DEFAULT_TTL) -> LeaseKeeper:
        """`with ledger.lock("upgrade") as lock:` — raises LockHeld if another holds it."""
        return LeaseKeeper(self.store, command, ttl)

    def record_revision(self, *, origin: Origin, description: str, bundle_version: str,
                        bundle_digest: str, config: Mapping[str, Any],
                        secrets: Mapping[str, str], manifests: Mapping[str, str],
                        images: Mapping[str, str],
                        restore: Mapping[str, Mapping[str, Any]] | None = None) -> Revision:
        """Record the next revision, `pending`. `secrets` maps each secret's name to its
        value: values are replaced by their hash in `config`, and must not be in
        `manifests` at all (those reference secrets by name; anything else is a bug)."""
        if origin not in get_args(Origin):
            raise ValueError(f"unknown origin {origin!r}")
        waiting = self.pending()
        if waiting is not None:
            raise RevisionPending(
                f"revision {waiting.number} ({waiting.description}) was interrupted and is "
                "still pending: resume it or roll it back before making another change")
        values = {name: value for name, value in secrets.items() if value}
        for filename, text in manifests.items():
            for name, value in values.items():
                if value in text:
                    raise LedgerError(f"rendered {filename} holds the value of secret {name}; "
                                      "refusing to record it (a bug: manifests reference "
                                      "secrets by name)")
        now = _now()
        revisions = self.numbers()
        revision = Revision(
            number=(revisions[-1] + 1) if revisions else 1, status="pending", origin=origin,
            description=description, created_at=now, updated_at=now,
            bundle_version=bundle_version, bundle_digest=bundle_digest,
            config=_hide_secrets(dict(config), values),
            secrets={name: _hash(value) for name, value in sorted(secrets.items())},
            manifests=dict(manifests), images=dict(images),
            restore={service: dict(backup) for service, backup in (restore or {}).items()})
        self._write(revision)
        return revision

    def mark(self, number: int, status: Status, reason: str = "") -> Revision:
        """Move a revision to its next state; deploying one supersedes the one before."""
        revision = self.revision(number)
        if status not in _NEXT[revision.status]:
            raise LedgerError(f"revision {number} is {revision.status}; "
                              f"it cannot become {status}")
        marked = replace(revision, status=status, updated_at=_now(),
                         reason=reason or revision.reason)
        # Written before superseding: a crash in between leaves two `deployed`, and
        # last_deployed() takes the newer; the next deploy supersedes both.
        self._write(marked)
        if status == "deployed":
            for other in self.revisions():
                if other.status == "deployed" and other.number != number:
                    self._write(replace(other, status="superseded", updated_at=marked.updated_at))
        return marked

    def record_backup(self, number: int, service: str, backup: Mapping[str, Any]) -> Revision:
        """Note on a pending revision the dump taken of `service` before changing it."""
        revision = self.revision(number)
        if revision.status != "pending":
            raise LedgerError(f"revision {number} is {revision.status}; backups are taken "
                              "before a revision is applied")
        noted = replace(revision, updated_at=_now(),
                        backups={**revision.backups, service: dict(backup)})
        self._write(noted)
        return noted

    def numbers(self) -> list[int]:
        found = (_REVISION_NAME.fullmatch(name) for name in self.store.names())
        return sorted(int(match[1]) for match in found if match)

    def revisions(self) -> list[Revision]:
        """Every revision, oldest first."""
        return [self.revision(number) for number in self.numbers()]

    def revision(self, number: int) -> Revision:
        name = _name(number)
        data = self.store.read(name)
        if data is None:
            known = self.numbers()
            have = f"revisions are {known[0]} to {known[-1]}" if known else "it has none"
            raise UnknownRevision(f"no revision {number} in the ledger ({have})")
        try:
            document = json.loads(data)
            if document.pop("format") != FORMAT:
                raise ValueError("written by another version of heliostat")
            if document.get("status") not in _NEXT:
                raise ValueError(f"unknown status {document.get('status')!r}")
            return Revision(**document)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise LedgerCorrupt(f"{self.store.location}/{name}", str(exc)) from None

    def last_deployed(self) -> Revision | None:
        deployed = [r for r in self.revisions() if r.status == "deployed"]
        return deployed[-1] if deployed else None

    def pending(self) -> Revision | None:
        """The revision an interrupted apply left behind, if any."""
        pending = [r for r in self.revisions() if r.status == "pending"]
        return pending[-1] if pending else None

    def _write(self, revision: Revision) -> None:
        document = {"format": FORMAT, **asdict(revision)}
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        self.store.write(_name(revision.number), text.encode("utf-8"))


def _name(number: int) -> str:
    return f"revision-{number:06d}.json"  # zero-padded: `ls` lists them in order


def _hash(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


def _hide_secrets(value: Any, secrets: Mapping[str, str]) -> Any:
    """`value` with every occurrence of a secret's value replaced by its hash."""
    if isinstance(value, str):
        for secret in sorted(secrets.values(), key=len, reverse=True):  # longest first
            value = value.replace(secret, _hash(secret))
        return value
    if isinstance(value, Mapping):
        return {key: _hide_secrets(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_hide_secrets(item, secrets) for item in value]
    return value


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
