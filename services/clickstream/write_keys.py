"""Write key to app, cached per process.

Entries are dropped on every change to keys or apps (LISTEN/NOTIFY) and also expire,
which bounds staleness while the listener is reconnecting. Unknown keys are cached
briefly too, so a flood of bad keys does not become a flood of queries.
"""

from __future__ import annotations

import threading
import time

import psycopg

from clickstream import storage
from clickstream.change_listener import ChangeListener

_TTL = 60.0
_UNKNOWN_TTL = 5.0
_MAX_ENTRIES = 100_000


class KeyStoreUnavailable(Exception):
    """Postgres could not be asked; the caller should answer 503."""


class WriteKeyCache:
    def __init__(self, dsn: str, listen: bool = True) -> None:
        self._dsn = dsn
        self._entries: dict[str, tuple[storage.App | None, float]] = {}
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._listener = ChangeListener(dsn, "clickstream_write_keys", self.clear)
        if listen:
            self._listener.start()

    def clear(self) -> None:
        self._entries = {}

    def lookup(self, key: str) -> storage.App | None:
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and entry[1] > now:
            return entry[0]
        app = self._query(key)
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries = {}
        self._entries[key] = (app, now + (_TTL if app else _UNKNOWN_TTL))
        return app

    def _query(self, key: str) -> storage.App | None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self._dsn, autocommit=True,
                                                     connect_timeout=3)
                    return storage.app_for_write_key(self._conn, key)
                except psycopg.OperationalError as exc:
                    self._conn = None
                    if attempt == 2:
                        raise KeyStoreUnavailable(str(exc)) from exc
        raise AssertionError("unreachable")
