"""Enabled destinations, cached per process and reloaded when they change.

Postgres notifies ``clickstream_destinations`` on every change (a trigger); the
listener marks the cache stale and the next read reloads the whole (small) table.
While Postgres is away the last good copy keeps being used, and Postgres is asked again
only as the backoff allows: the router and the workers read the catalog per message,
and each try could block for the connect timeout.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg

from clickstream import storage
from clickstream.change_listener import ChangeListener
from clickstream.reconnect_backoff import ReconnectBackoff

log = logging.getLogger(__name__)

_RELOAD_EVERY = 300.0  # a safety net in case a notification is ever lost


class DestinationCatalog:
    def __init__(self, dsn: str, kind: str | None = None, listen: bool = True) -> None:
        self._dsn = dsn
        self._kind = kind
        self._by_app: dict[int, list[storage.Destination]] = {}
        self._by_id: dict[int, storage.Destination] = {}
        self._stale = True
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        #: Increases on every reload, so users can tell when to re-read (workers);
        #: 0 until the first load succeeded.
        self.version = 0
        self._backoff = ReconnectBackoff()
        self._listener = ChangeListener(dsn, "clickstream_destinations", self.mark_stale)
        if listen:
            self._listener.start()

    def mark_stale(self) -> None:
        self._stale = True

    def _refresh(self) -> None:
        if not self._due():
            return
        with self._lock:
            if not self._due():
                return
            self._stale = False
            try:
                with psycopg.connect(self._dsn, connect_timeout=3) as conn:
                    found = storage.list_destinations(conn, kind=self._kind)
            except psycopg.Error as exc:
                self._stale = True
                if not self._backoff.failing:  # once per outage
                    log.warning("cannot load destinations; using the cached ones",
                                extra={"error": str(exc)})
                self._backoff.failed()
                return
            self._backoff.succeeded()
            by_app: dict[int, list[storage.Destination]] = {}
            for destination in found:
                if destination.enabled:
                    by_app.setdefault(destination.app_id, []).append(destination)
            self._by_app = by_app
            self._by_id = {d.id: d for d in found}
            self._loaded_at = time.monotonic()
            self.version += 1

    def _due(self) -> bool:
        if not self._stale and time.monotonic() - self._loaded_at < _RELOAD_EVERY:
            return False
        return self._backoff.may_try()

    def wait_loaded(self, stopping: threading.Event) -> bool:
        """Block until destinations were loaded once (False if stopped first).

        Routing with an empty catalog would commit events as routed to nowhere."""
        while not stopping.is_set():
            self._refresh()
            if self.version:
                return True
            self._stale = True
            stopping.wait(2.0)
        return False

    def for_app(self, app_id: int) -> list[storage.Destination]:
        """Enabled destinations of one app."""
        self._refresh()
        return self._by_app.get(app_id, [])

    def enabled(self) -> list[storage.Destination]:
        self._refresh()
        return [d for group in self._by_app.values() for d in group]

    def get(self, destination_id: int) -> storage.Destination | None:
        """Any destination by id, enabled or not."""
        self._refresh()
        return self._by_id.get(destination_id)
