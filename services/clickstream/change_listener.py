"""Postgres LISTEN in a background thread: calls back when a channel is notified.

Used to drop cached write keys and destinations the moment they change. Once the
connection is (re)established `on_change` runs too, since notifications may have been
missed; when it is lost, `on_lost` runs (a cache can then re-check what it holds, yet
keep serving it while Postgres is away).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql

from clickstream.reconnect_backoff import ReconnectBackoff

log = logging.getLogger(__name__)


class ChangeListener:
    def __init__(self, dsn: str, channel: str, on_change: Callable[[], None],
                 on_lost: Callable[[], None] | None = None) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_change = on_change
        self._on_lost = on_lost or on_change
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}",
                                        daemon=True)

    def start(self) -> ChangeListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        backoff = ReconnectBackoff(first=1.0)
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self.connected.set()
                    backoff.succeeded()
                    self._on_change()  # anything before LISTEN may have been missed
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self._on_change()
            except psycopg.Error as exc:
                if not backoff.failing:  # once per outage, not once per retry
                    log.warning("change listener lost Postgres; retrying",
                                extra={"channel": self._channel, "error": str(exc)})
                backoff.failed()
            if self.connected.is_set():
                self.connected.clear()
                self._on_lost()
            while not (self._stop.is_set() or backoff.may_try()):
                self._stop.wait(0.25)
