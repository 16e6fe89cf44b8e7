"""HTTP for webhook deliveries: each request bounded as a whole, its answer read only
as far as an error message needs.

requests' timeout bounds each socket read, not the request: a receiver that sends a
byte every few seconds would hold a delivery thread — and the partition behind it —
for as long as it likes. Here the connection a request goes out on is known, and a
watchdog shuts its socket once the request is past its deadline, which ends the blocked
read at once.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError

#: Most bytes of an answer read: the start of an error's body goes into the message;
#: a longer answer's connection is dropped rather than read through.
MAX_ANSWER = 4096
WATCH_EVERY = 0.1


@dataclass
class _Request:
    deadline: float
    connection: HTTPConnection | None = None
    expired: bool = False


class RequestDeadlines:
    """The deadlines of the requests in flight, one per delivery thread, and the watchdog
    that enforces them."""

    def __init__(self) -> None:
        self._requests: dict[int, _Request] = {}
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None

    @contextlib.contextmanager
    def bound(self, seconds: float) -> Iterator[_Request]:
        """The request made in the block ends by `seconds` from now (its connection is
        shut then); `.expired` says whether that is how it ended."""
        request = _Request(time.monotonic() + seconds)
        with self._lock:
            self._requests[threading.get_ident()] = request
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, daemon=True,
                                                  name="webhook-deadlines")
                self._watchdog.start()
        try:
            yield request
        finally:
            with self._lock:
                self._requests.pop(threading.get_ident(), None)

    def sending_on(self, connection: HTTPConnection) -> None:
        """Called by a connection as the thread's request goes out on it."""
        with self._lock:
            request = self._requests.get(threading.get_ident())
            if request is not None:
                request.connection = connection

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_EVERY)
            now = time.monotonic()
            with self._lock:
                for request in self._requests.values():
                    if not request.expired and now >= request.deadline:
                        request.expired = True
                        _shut(request.connection)


def _shut(connection: HTTPConnection | None) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


DEADLINES = RequestDeadlines()


class _WatchedConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        DEADLINES.sending_on(self)
        super().request(*args, **kwargs)


class _WatchedTlsConnection(HTTPSConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        DEADLINES.sending_on(self)
        super().request(*args, **kwargs)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedTlsConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}
        return manager


def watched_session(user_agent: str) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    for prefix in ("http://", "https://"):
        session.mount(prefix, _WatchedAdapter())
    return session


def read_answer(response: requests.Response) -> bytes:
    """At most MAX_ANSWER bytes of the answer's body; the connection goes back to the
    pool only when the body was read to its end."""
    try:
        body = response.raw.read(MAX_ANSWER, decode_content=True) or b""
        more = response.raw.read(1, decode_content=True)
    except (HTTPError, OSError):  # cut or garbled: the status is what counts
        response.close()
        return b""
    if more:
        response.close()  # not read through: the connection cannot be reused
    else:
        response.raw.release_conn()
    return body
