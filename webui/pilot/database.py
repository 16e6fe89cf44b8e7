"""Pilot's Postgres: a connection per unit of work, rows as dicts.

A console's traffic is a few requests a second at most, so a fresh connection per
request costs little and survives a restarted Postgres without any pool to heal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5

Connection = psycopg.Connection[dict[str, Any]]


class DatabaseUnavailable(Exception):
    """Postgres cannot be reached or refused the connection."""


class Database:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    @contextmanager
    def connect(self, timeout: int = CONNECT_TIMEOUT) -> Iterator[Connection]:
        """A connection in a transaction, committed when the block ends without error."""
        try:
            conn = psycopg.connect(self.dsn, connect_timeout=timeout, row_factory=dict_row)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(_first_line(exc)) from None
        try:
            with conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(_first_line(exc)) from None

    def ping(self, timeout: int = 2) -> str | None:
        """None when Postgres answers, else why not (within the health probe's time)."""
        try:
            with self.connect(timeout) as conn:
                conn.execute("SELECT 1")
        except DatabaseUnavailable as exc:
            return str(exc)
        return None

    def wait_until_up(self, timeout: float) -> None:
        """Return once Postgres answers; DatabaseUnavailable after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            problem = self.ping()
            if problem is None:
                return
            if time.monotonic() >= deadline:
                raise DatabaseUnavailable(problem)
            log.warning("waiting for Postgres", extra={"reason": problem})
            time.sleep(2)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
