"""One Commander process: its platform, audit log, operations, queue and worker."""

from __future__ import annotations

import threading
from typing import Any

from commander import metrics
from commander.audit import AuditLog
from commander.operations import Kind, Operation, OperationQueue, OperationStore
from commander.platform_state import PlatformState
from commander.settings import Settings
from commander.worker import Worker


class Commander:
    def __init__(self, settings: Settings, start_worker: bool = True) -> None:
        self.settings = settings
        self.platform = PlatformState(settings.platform, settings.state_dir)
        self.audit = AuditLog(settings.data_dir / "audit.jsonl")
        self.store = OperationStore(settings.data_dir / "operations")
        self.queue = OperationQueue(self.store)
        self.worker = Worker(self.platform, self.store, self.queue, self.audit,
                             settings.lock_retry_seconds)
        self.runs_worker = start_worker
        # Deciding whether a push is new and queueing it is one step: the registry sends
        # notifications concurrently, and two of one digest must not both be queued.
        self.submitting = threading.RLock()
        self._requeue_unfinished()
        if start_worker:
            self.worker.start()

    def _requeue_unfinished(self) -> None:
        """Operations a previous Commander had not finished run again, in their order; a
        revision it left pending is resumed (or rolled back) by the next apply."""
        for operation in self.store.all():
            if not operation.finished:
                self.store.add_event(operation.id, "Commander restarted; queued again")
                self.submit(self.store.update(operation.id, state="queued"))

    def queue_new(self, kind: Kind, description: str, who: str, remote: str | None,
                  **fields: Any) -> Operation:
        """A new operation, recorded and queued."""
        with self.submitting:
            operation = self.store.create(kind, description, who, remote, **fields)
            self.submit(operation)
            return operation

    def submit(self, operation: Operation) -> None:
        """Queue `operation`; the queued pushes it supersedes end in the audit log."""
        for older in self.queue.put(operation):
            self.audit.append(who=older.who, remote=older.remote, action=older.kind,
                              target=older.description, outcome="superseded",
                              detail=older.reason, operation=older.id)
        metrics.QUEUE_DEPTH.set(self.queue.depth())

    def healthy(self) -> bool:
        return not self.runs_worker or self.worker.alive()
