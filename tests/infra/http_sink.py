"""An HTTP endpoint on loopback that records what it receives, for webhook-style
deliveries (the registry's notifications, clickstream's webhook destinations).

The test decides how it answers: a status, a script of answers for the next
requests, or no answer at all (down: connections refused on the same port).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class HttpSink:
    def __init__(self, status: int = 200, host: str = "127.0.0.1") -> None:
        self.status = status
        #: Requests answered 2xx, in arrival order.
        self.received: list[Received] = []
        #: When requests were answered with a status outside 2xx.
        self.refusals: list[float] = []
        #: Answers for the next requests, ahead of ``status``: (status, headers).
        self.script: list[tuple[int, dict[str, str]]] = []
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        # `host`: where containers reach it too, e.g. a Docker network's gateway address.
        self.host = host
        with socket.socket() as probe:
            probe.bind((host, 0))
            self.port: int = probe.getsockname()[1]
        self.url = f"http://{host}:{self.port}/hook"
        self.start()

    def start(self) -> None:
        """Come up (again) on the same port."""
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender went away mid-body (a killed worker): like any real
                    # server, nothing was received and there is no one to answer.
                    self.close_connection = True
                    return
                with sink._changed:
                    status, headers = sink.script.pop(0) if sink.script else (sink.status, {})
                    if 200 <= status < 300:
                        sink.received.append(Received(self.command, self.path,
                                                      dict(self.headers), body, time.time()))
                    else:
                        sink.refusals.append(time.time())
                    sink._changed.notify_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # tests assert on what was received; no console noise

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Go down: the port refuses connections until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        """Every event received, in arrival order, unpacking batches."""
        found = []
        for request in list(self.received):
            payload = request.json()
            found.extend(payload.get("batch", [payload]))
        return found

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out; received {len(self.received)} requests: "
                        + "; ".join(f"{r.method} {r.path} {r.body[:200]!r}"
                                    for r in self.received[-5:]))
                self._changed.wait(min(remaining, 0.5))

    def wait_for(self, match: Callable[[Received], bool], timeout: float = 30) -> Received:
        """The first request (already received or arriving within `timeout`) that matches."""
        self.wait_until(lambda: any(match(r) for r in self.received), timeout)
        return next(r for r in self.received if match(r))
