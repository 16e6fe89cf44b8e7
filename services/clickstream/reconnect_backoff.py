"""When to ask an unreachable store again: after a failure, not before a delay that
doubles with each failure in a row (0.5 s up to 15 s), so that a process whose
Postgres is away does not try to connect once per request or per message — each try
can block for its connect timeout — and serves what it has cached meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable

FIRST_DELAY = 0.5
MAX_DELAY = 15.0


class ReconnectBackoff:
    def __init__(self, first: float = FIRST_DELAY, most: float = MAX_DELAY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._first = first
        self._most = most
        self._clock = clock
        self._failures = 0
        self._next_try = 0.0

    @property
    def failing(self) -> bool:
        """The last try failed (and none has succeeded since)."""
        return self._failures > 0

    def may_try(self) -> bool:
        return self._clock() >= self._next_try

    def failed(self) -> None:
        self._failures += 1
        delay = min(self._most, self._first * 2 ** (self._failures - 1))
        self._next_try = self._clock() + delay

    def succeeded(self) -> None:
        self._failures = 0
        self._next_try = 0.0
