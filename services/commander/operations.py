"""Operations: the changes Commander was asked for, queued and run one at a time.

Each operation is a JSON document in the state directory, rewritten atomically when its
state changes, with its progress lines appended to a file beside it; a restarted
Commander reads them back and queues again whatever had not finished (an interrupted
revision is then resumed by the next apply, as the CLI does).

Registry pushes collapse: a push queued for services that a newer push also targets is
superseded by it before it starts, so a burst of pushes makes one revision, the newest.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from heliostat.ledger_store import write_atomically

Kind = Literal["image", "rollback", "registry"]
State = Literal["queued", "waiting", "running", "deployed", "unchanged", "rolled-back",
                "failed", "superseded"]
FINISHED: frozenset[str] = frozenset({"deployed", "unchanged", "rolled-back", "failed",
                                      "superseded"})
_DOCUMENT = re.compile(r"op-(\d+)\.json")


@dataclass(frozen=True)
class Operation:
    id: str
    kind: Kind
    description: str  # what the ledger records: `commander: image gateway:1.2`
    who: str
    remote: str | None
    created_at: str
    services: tuple[str, ...] = ()  # image and registry operations: what runs `image`
    image: str = ""
    revision: int | None = None  # rollback: the revision to go back to; after: recorded
    state: State = "queued"
    updated_at: str = ""
    reason: str = ""  # why it failed, was rolled back or superseded
    rolled_back_to: int | None = None
    superseded_by: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def collapse_key(self) -> tuple[str, ...] | None:
        """Registry pushes for the same services collapse into the newest."""
        return self.services if self.kind == "registry" else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "services": list(self.services)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        return cls(**{**data, "services": tuple(data.get("services", ()))})


class OperationStore:
    """Operations and their progress lines, in memory and on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._operations: dict[str, Operation] = {}
        self._events: dict[str, list[str]] = {}
        self._next = 1
        self._load()

    def create(self, kind: Kind, description: str, who: str, remote: str | None,
               **fields: Any) -> Operation:
        with self._lock:
            now = _now()
            operation = Operation(id=f"op-{self._next}", kind=kind, description=description,
                                  who=who, remote=remote, created_at=now, updated_at=now,
                                  **fields)
            self._next += 1
            self._save(operation)
            self._events[operation.id] = []
            self._changed.notify_all()
            return operation

    def update(self, operation_id: str, **changes: Any) -> Operation:
        with self._lock:
            operation = replace(self._operations[operation_id], **changes, updated_at=_now())
            self._save(operation)
            self._changed.notify_all()
            return operation

    def add_event(self, operation_id: str, line: str) -> None:
        with self._lock:
            self._events[operation_id].append(line)
            path = self.directory / f"{operation_id}.events"
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._changed.notify_all()

    def get(self, operation_id: str) -> Operation | None:
        with self._lock:
            return self._operations.get(operation_id)

    def all(self) -> list[Operation]:
        with self._lock:
            return sorted(self._operations.values(), key=_number)

    def events(self, operation_id: str) -> list[str]:
        with self._lock:
            return list(self._events.get(operation_id, []))

    def follow(self, operation_id: str, start: int = 0,
               keepalive: float = 15.0) -> Iterator[tuple[int, str] | None]:
        """Its progress lines from index `start` as they come, until it has finished;
        None every `keepalive` seconds without one (so a proxy keeps the stream open)."""
        index = start
        while True:
            with self._lock:
                lines = self._events.get(operation_id, [])
                finished = self._operations[operation_id].finished
                if index >= len(lines) and not finished:
                    self._changed.wait(keepalive)
                    lines = self._events.get(operation_id, [])
                    finished = self._operations[operation_id].finished
                fresh = lines[index:]
            if not fresh and not finished:
                yield None
            for line in fresh:
                yield index, line
                index += 1
            if finished and not fresh:
                return

    def _save(self, operation: Operation) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps(operation.to_json(), indent=2, sort_keys=True) + "\n"
        write_atomically(self.directory / f"{operation.id}.json", text.encode("utf-8"))
        self._operations[operation.id] = operation

    def _load(self) -> None:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return
        for name in names:
            match = _DOCUMENT.fullmatch(name)
            if not match:
                continue
            operation = Operation.from_json(json.loads((self.directory / name).read_text()))
            self._operations[operation.id] = operation
            self._events[operation.id] = _read_events(self.directory / f"{operation.id}.events")
            self._next = max(self._next, int(match[1]) + 1)


class OperationQueue:
    """Operations waiting for the worker, in order; pushes collapse into the newest."""

    def __init__(self, store: OperationStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._queued: list[str] = []
        self.running: str | None = None

    def put(self, operation: Operation) -> list[Operation]:
        """Queue `operation`; returns the queued operations it superseded."""
        superseded = []
        with self._lock:
            key = operation.collapse_key
            if key is not None:
                for older_id in list(self._queued):
                    older = self.store.get(older_id)
                    if older is not None and older.collapse_key == key:
                        self._queued.remove(older_id)
                        superseded.append(self.store.update(
                            older_id, state="superseded", superseded_by=operation.id,
                            reason=f"superseded by {operation.id} ({operation.description}) "
                                   "before it started"))
            self._queued.append(operation.id)
            self._ready.notify_all()
        return superseded

    def take(self, timeout: float | None = None) -> Operation | None:
        """The next operation, now marked as the one running; None after `timeout`."""
        with self._lock:
            if not self._queued:
                self._ready.wait(timeout)
            if not self._queued:
                return None
            self.running = self._queued.pop(0)
            return self.store.get(self.running)

    def done(self) -> None:
        with self._lock:
            self.running = None

    def depth(self) -> int:
        with self._lock:
            return len(self._queued)

    def pending(self) -> list[Operation]:
        """The running operation and the queued ones, in the order they run."""
        with self._lock:
            ids = ([self.running] if self.running else []) + list(self._queued)
        return [op for op in (self.store.get(i) for i in ids) if op is not None]


def _read_events(path: Path) -> list[str]:
    try:
        raw = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    lines = []
    for item in raw:
        try:
            lines.append(str(json.loads(item)))
        except ValueError:
            continue  # a line torn by a crash
    return lines


def _number(operation: Operation) -> int:
    return int(operation.id.removeprefix("op-"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


