"""A real HTTP server standing in for a webhook receiver, whose behaviour the test
switches: answer a status, or be down altogether (connections refused)."""

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
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.headers: dict[str, str] = {}
        self.requests: list[Request] = []
        self.refused = 0
        #: Answers for the next requests, ahead of ``status``: (status, headers).
        self.script: list[tuple[int, dict[str, str]]] = []
        self.refusals: list[float] = []
        self._changed = threading.Condition()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._server: ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._changed:
                    status, headers = (receiver.script.pop(0) if receiver.script
                                       else (receiver.status, receiver.headers))
                    if 200 <= status < 300:
                        receiver.requests.append(
                            Request(self.path, dict(self.headers), body, time.time()))
                    else:
                        receiver.refused += 1
                        receiver.refusals.append(time.time())
                    receiver._changed.notify_all()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
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
        for request in list(self.requests):
            payload = request.json()
            found.extend(payload.get("batch", [payload]))
        return found

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out; receiver has {len(self.events())} events")
                self._changed.wait(min(remaining, 0.5))
