"""Token buckets per app, per process: ``rate`` events/s with a one-second burst."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[int, tuple[float, float]] = {}  # app id -> (tokens, updated)
        self._lock = threading.Lock()

    def acquire(self, app_id: int, rate: int | None, count: int = 1) -> float:
        """Take ``count`` tokens; return 0 if allowed, else seconds to wait."""
        if not rate:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, updated = self._buckets.get(app_id, (float(rate), now))
            tokens = min(float(rate), tokens + (now - updated) * rate)
            if count > rate:
                # A batch larger than the burst can never fit; let it through alone
                # once the bucket is full rather than refusing it forever.
                if tokens < rate:
                    self._buckets[app_id] = (tokens, now)
                    return (rate - tokens) / rate
                self._buckets[app_id] = (0.0, now)
                return 0.0
            if tokens >= count:
                self._buckets[app_id] = (tokens - count, now)
                return 0.0
            self._buckets[app_id] = (tokens, now)
            return (count - tokens) / rate


def retry_after_header(wait_seconds: float) -> str:
    return str(max(1, math.ceil(wait_seconds)))
