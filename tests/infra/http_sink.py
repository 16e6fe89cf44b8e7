"""An HTTP endpoint on loopback that records every request, for webhook-style deliveries
(the registry's notifications, later the platform's webhook destinations)."""

from __future__ import annotations

import json
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

    def json(self) -> Any:
        return json.loads(self.body)


class HttpSink:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[Received] = []
        self._arrived = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with sink._arrived:
                    sink.received.append(
                        Received(self.command, self.path, dict(self.headers), body)
                    )
                    sink._arrived.notify_all()
                self.send_response(sink.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_GET = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test asserts on .received; no console noise

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def wait_for(self, match: Callable[[Received], bool], timeout: float = 30) -> Received:
        """The first request (already received or arriving within `timeout`) that matches."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for request in self.received:
                    if match(request):
                        return request
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching request within {timeout}s; got {len(self.received)}: "
                        + "; ".join(f"{r.method} {r.path} {r.body[:200]!r}" for r in self.received)
                    )
                self._arrived.wait(remaining)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
