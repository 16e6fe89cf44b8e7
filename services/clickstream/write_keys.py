"""Write key to app, cached per process.

Entries are dropped on every change to keys or apps (LISTEN/NOTIFY) and also expire,
which bounds staleness while the listener is reconnecting. Unknown keys are cached
briefly too, so a flood of bad keys does not become a flood of queries.

While Postgres is away, ingestion goes on for the keys the process knows: an expired
entry of a known key is served as it was (for up to STALE_FOR), and the listener's
lost connection only marks entries to be checked again, it does not forget them. A key
the process does not know, or knew as unknown, is then "cannot check" (503), never
"unknown" (401): the client keeps its events and retries. Postgres is asked again only
as the backoff allows, so requests do not each wait for a connect timeout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import psycopg

from clickstream import storage
from clickstream.change_listener import ChangeListener
from clickstream.reconnect_backoff import ReconnectBackoff

log = logging.getLogger(__name__)

_UNKNOWN_TTL = 5.0
_MAX_ENTRIES = 100_000
#: How long a known key keeps working, unchecked, while Postgres cannot be asked. A key
#: revoked just before an outage (its notification missed) is accepted that long at most.
STALE_FOR = 3600.0


class KeyStoreUnavailable(Exception):
    """Postgres could not be asked; the caller should answer 503."""


class _Entry:
    __slots__ = ("app", "checked_at", "fresh_until")

    def __init__(self, app: storage.App | None, checked_at: float, fresh_until: float) -> None:
        self.app = app
        self.checked_at = checked_at
        self.fresh_until = fresh_until


class WriteKeyCache:
    #: What :meth:`cached` answers for a key it cannot answer for without Postgres.
    NOT_CACHED = object()

    def __init__(self, dsn: str, listen: bool = True, ttl: float = 60.0) -> None:
        self._dsn = dsn
        self._ttl = ttl
        self._entries: dict[str, _Entry] = {}
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._backoff = ReconnectBackoff()
        self._listener = ChangeListener(dsn, "clickstream_write_keys", self.clear,
                                        on_lost=self.check_again)
        if listen:
            self._listener.start()

    def clear(self) -> None:
        self._entries = {}

    def check_again(self) -> None:
        """Changes may be missed from now on: every entry is checked on its next use,
        and kept should Postgres not answer."""
        for entry in list(self._entries.values()):
            entry.fresh_until = 0.0

    def cached(self, key: str) -> storage.App | object | None:
        """The app of a key checked recently (None: known unknown), without waiting;
        :attr:`NOT_CACHED` when only :meth:`lookup` can tell."""
        entry = self._entries.get(key)
        if entry is not None and entry.fresh_until > time.monotonic():
            return entry.app
        return self.NOT_CACHED

    async def find(self, key: str) -> storage.App | None:
        """:meth:`lookup` for an event loop: a key not cached is looked up in a thread,
        so that Postgres never holds up the other requests."""
        found = self.cached(key)
        if found is not self.NOT_CACHED:
            return found  # type: ignore[return-value]
        return await asyncio.to_thread(self.lookup, key)

    def lookup(self, key: str) -> storage.App | None:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry.fresh_until > now:
            return entry.app
        stale = entry.app if entry is not None and now - entry.checked_at < STALE_FOR else None
        # One thread asks Postgres at a time; the others, for a key they know, do not
        # wait for it.
        if not self._lock.acquire(blocking=stale is None):
            return stale
        try:
            if not self._backoff.may_try():
                return self._unchecked(stale)
            try:
                app = self._query(key)
            except KeyStoreUnavailable:
                if not self._backoff.failing:
                    log.warning("cannot check write keys in Postgres; known keys keep "
                                "working unchecked")
                self._backoff.failed()
                return self._unchecked(stale)
            if self._backoff.failing:
                log.info("write keys are checked in Postgres again")
            self._backoff.succeeded()
        finally:
            self._lock.release()
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries = {}
        self._entries[key] = _Entry(app, now, now + (self._ttl if app else _UNKNOWN_TTL))
        return app

    @staticmethod
    def _unchecked(stale: storage.App | None) -> storage.App:
        if stale is None:
            raise KeyStoreUnavailable("Postgres cannot be asked about this write key")
        return stale

    def _query(self, key: str) -> storage.App | None:
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=3)
                return storage.app_for_write_key(self._conn, key)
            except psycopg.OperationalError as exc:
                # The connection may have been closed since the last query: one new one.
                self._conn = None
                if attempt == 2:
                    raise KeyStoreUnavailable(str(exc)) from exc
        raise AssertionError("unreachable")
