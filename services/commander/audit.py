"""The audit log: who asked Commander for what, when, from where, and what came of it.

JSON lines appended to one file in the state directory, each fsynced before the request
is answered, so an entry survives a crash the moment its caller saw a reply. Never
rewritten: a line torn by a crash mid-write is skipped when read, the rest stay valid.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, *, who: str, action: str, outcome: str, remote: str | None = None,
               target: str | None = None, detail: str = "",
               operation: str | None = None) -> dict[str, Any]:
        entry = {"at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                 "who": who, "remote": remote, "action": action, "target": target,
                 "outcome": outcome, "detail": detail, "operation": operation}
        line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
            try:
                view = memoryview(line)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Oldest first; the newest `limit` of them when given."""
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        found = []
        for raw in lines:
            try:
                entry = json.loads(raw)
            except ValueError:
                continue  # torn by a crash while it was written; nothing was answered for it
            if isinstance(entry, dict):
                found.append(entry)
        return found[-limit:] if limit else found
