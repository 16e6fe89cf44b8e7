"""Postgres LISTEN in a background thread: calls back when a channel is notified.

Used to drop cached write keys and destinations the moment they change. After a
lost connection the callback runs too, since notifications may have been missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


class ChangeListener:
    def __init__(self, dsn: str, channel: str, on_change: Callable[[], None]) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_change = on_change
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
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self.connected.set()
                    self._on_change()  # anything before LISTEN may have been missed
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self._on_change()
            except psycopg.Error as exc:
                log.warning("change listener lost Postgres; retrying",
                            extra={"channel": self._channel, "error": str(exc)})
            self.connected.clear()
            self._on_change()
            self._stop.wait(2.0)
