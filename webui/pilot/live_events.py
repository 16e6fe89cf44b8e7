"""The live event debugger's source: the recent-events stream the clickstream router
writes to Redis for each app (`clickstream.recent_events`: key `<prefix>:recent:<app>`,
one field `event` with the event's JSON), read newest first for the page and the API,
and followed with XREAD BLOCK for the page's server-sent events.

A stream answer lasts `lifetime` seconds, then ends; the browser's EventSource reconnects
by itself with the id of the last event it had (Last-Event-ID), so nothing is missed and
no gunicorn thread stays taken. At most `max_streams` are served at once per process,
so open debuggers never take every thread from the pages.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import redis

from clickstream.recent_events import MAX_EVENTS, stream_key

log = logging.getLogger(__name__)

#: How long one XREAD blocks; a comment line is sent after each quiet one, so that
#: proxies see traffic, and a connection the browser closed is noticed and its slot
#: freed within two of these (the first write after the close still succeeds).
HEARTBEAT_SECONDS = 3.0
#: Entries taken per read; a burst is sent in several reads.
READ_COUNT = 100
#: Milliseconds after which the browser reconnects when a stream ends.
RECONNECT_MS = 1000
LATEST_MAX = MAX_EVENTS  # the stream holds about this many per app
_STREAM_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
_U64 = 2**64 - 1


class EventsUnavailable(Exception):
    """The recent-events stream cannot be read now: 503 with this reason."""


class StreamsBusy(Exception):
    """This process serves as many live streams as it may: 503, try again later."""


def stream_id(text: str | None) -> str | None:
    """A Redis stream id (`<ms>-<seq>`, or `<ms>`) normalised, or None if it is not one."""
    found = _STREAM_ID.fullmatch((text or "").strip())
    if found is None:
        return None
    ms, seq = int(found[1]), int(found[2] or 0)
    if ms > _U64 or seq > _U64:
        return None
    return f"{ms}-{seq}"


@dataclass(frozen=True)
class LiveEvent:
    id: str
    event: Any  # the event as stored, or None when it is not JSON
    raw: str | None = None  # the stored text, when it is not JSON

    @classmethod
    def of(cls, entry_id: bytes | str, value: bytes | None) -> LiveEvent:
        ident = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        text = (value or b"").decode("utf-8", "replace")
        try:
            return cls(ident, json.loads(text))
        except ValueError:
            return cls(ident, None, text)

    @property
    def received_at(self) -> str:
        """When the router added it (the stream id's milliseconds), in UTC."""
        ms = int(self.id.split("-", 1)[0])
        return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")

    @property
    def summary(self) -> str:
        """One line, as the debugger lists it: type, what, who."""
        event = self.event
        if not isinstance(event, dict):
            return "not a JSON object"
        kind = str(event.get("type") or "event")
        what = {"track": event.get("event"), "page": event.get("name"),
                "screen": event.get("name"), "group": event.get("groupId"),
                "alias": event.get("previousId")}.get(kind)
        who = event.get("userId") or event.get("anonymousId")
        parts = [kind] + [str(p) for p in (what, who) if p not in (None, "")]
        return " · ".join(parts)

    @property
    def pretty(self) -> str:
        if self.event is None:
            return self.raw or ""
        return json.dumps(self.event, indent=2, ensure_ascii=False)

    def to_json(self) -> dict[str, Any]:
        body = {"id": self.id, "received_at": self.received_at, "summary": self.summary,
                "event": self.event}
        if self.raw is not None:
            body["raw"] = self.raw
        return body


class LiveEvents:
    def __init__(self, redis_url: str | None, prefix: str, lifetime: float,
                 max_streams: int) -> None:
        self.prefix = prefix
        self.lifetime = lifetime
        # redis-py's pool is thread-safe and starts afresh in each forked worker; a
        # blocking read holds one connection for its time, hence the socket timeout.
        self._redis = (redis.Redis.from_url(redis_url, socket_connect_timeout=2,
                                            socket_timeout=HEARTBEAT_SECONDS + 5)
                       if redis_url else None)
        self._slots = threading.BoundedSemaphore(max_streams)

    @property
    def enabled(self) -> bool:
        return self._redis is not None

    def latest(self, app_id: int, count: int) -> list[LiveEvent]:
        """The app's newest `count` events, newest first."""
        entries = self._call(lambda r: r.xrevrange(stream_key(self.prefix, app_id),
                                                   count=count))
        return [LiveEvent.of(ident, fields.get(b"event")) for ident, fields in entries]

    def position(self, app_id: int) -> str:
        """The id of the app's newest event ("0-0" for none): a stream opened from here
        sends what arrives from now on."""
        newest = self._call(lambda r: r.xrevrange(stream_key(self.prefix, app_id), count=1))
        return newest[0][0].decode() if newest else "0-0"

    def stream(self, app_id: int, after: str | None) -> tuple[Iterator[bytes], Callable[[], None]]:
        """(the server-sent events of what arrives after `after`, or from now on; what
        to call once the answer is closed). StreamsBusy, EventsUnavailable."""
        client = self._client()
        if not self._slots.acquire(blocking=False):
            raise StreamsBusy()
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                self._slots.release()

        try:
            # Resolved now, not at the first read: what arrives meanwhile is "after". A
            # reconnect names its own start, and Redis answering is checked all the same,
            # so that its absence is a 503 that says why, not a stream that ends at once.
            start = self.position(app_id) if after is None else self._call(
                lambda r: r.ping() and after)
        except BaseException:
            release()
            raise
        deadline = time.monotonic() + self.lifetime
        return self._follow(client, stream_key(self.prefix, app_id), start, deadline), release

    def _follow(self, client: redis.Redis, key: str, last: str,
                deadline: float) -> Iterator[bytes]:
        yield f"retry: {RECONNECT_MS}\n\n".encode()
        while (remaining := deadline - time.monotonic()) > 0:
            block_ms = max(1, int(min(HEARTBEAT_SECONDS, remaining) * 1000))
            try:
                found = client.xread({key: last}, count=READ_COUNT, block=block_ms)
            except redis.RedisError as exc:
                # Ending is enough: the browser reconnects, and is answered 503 (it says
                # so) while Redis stays away.
                log.warning("recent events stream failed", extra={"error": str(exc)})
                return
            entries = found[0][1] if found else []
            if not entries:
                yield b": waiting\n\n"
                continue
            for ident, fields in entries:
                item = LiveEvent.of(ident, fields.get(b"event"))
                last = item.id
                yield f"id: {item.id}\ndata: {json.dumps(item.to_json())}\n\n".encode()

    def ping(self) -> str | None:
        """None when Redis answers, else why not."""
        try:
            self._call(lambda r: r.ping())
        except EventsUnavailable as exc:
            return str(exc)
        return None

    def _client(self) -> redis.Redis:
        if self._redis is None:
            raise EventsUnavailable("Pilot is not given the platform's Redis (REDIS_URL is "
                                    "empty), where the recent events are kept")
        return self._redis

    def _call(self, call: Callable[[redis.Redis], Any]) -> Any:
        client = self._client()
        try:
            return call(client)
        except redis.RedisError as exc:
            raise EventsUnavailable(f"Redis, where the recent events are kept, is "
                                    f"unavailable: {exc}") from None
