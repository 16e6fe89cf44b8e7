"""A capped stream of each app's latest events in Redis, for Pilot's live debugger.

Key ``<prefix>:recent:<app id>``, a Redis stream trimmed to about ``MAX_EVENTS``
entries, each with one field ``event`` holding the event's JSON. Best effort: a
Redis outage never holds up routing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import redis

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
# Per app and call: the debugger shows the newest events, so older ones in a large
# batch would be trimmed away at once anyway.
_PER_APP_PER_CALL = 100


def stream_key(prefix: str, app_id: int) -> str:
    return f"{prefix}:recent:{app_id}"


class RecentEvents:
    def __init__(self, redis_url: str, prefix: str) -> None:
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
        self._prefix = prefix
        self._quiet_until = 0.0

    def add(self, events: Iterable[tuple[int, bytes]]) -> None:
        """Append ``(app id, event JSON)`` pairs, oldest first."""
        if time.monotonic() < self._quiet_until:
            return
        newest: dict[int, list[bytes]] = {}
        for app_id, value in events:
            newest.setdefault(app_id, []).append(value)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for app_id, values in newest.items():
                key = stream_key(self._prefix, app_id)
                for value in values[-_PER_APP_PER_CALL:]:
                    pipe.xadd(key, {"event": value}, maxlen=MAX_EVENTS, approximate=True)
            pipe.execute()
        except redis.RedisError as exc:
            self._quiet_until = time.monotonic() + 5.0
            log.warning("cannot update recent events", extra={"error": str(exc)})

    def read(self, app_id: int, count: int = 100) -> list[bytes]:
        """Newest first, as the debugger shows them."""
        entries = self._redis.xrevrange(stream_key(self._prefix, app_id), count=count)
        return [fields[b"event"] for _id, fields in entries]
