"""Webhook receiver for the latency run, in its own process so it does not share a GIL
with the load generator. Writes ``arrival_ns sent_ns received_at`` per event."""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main(port: int, out_path: str) -> None:
    out = open(out_path, "w", buffering=1)  # noqa: SIM115  (open for the process' life)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.time_ns()
            payload = json.loads(body)
            for event in payload.get("batch", [payload]):
                out.write(f"{now} {event['properties']['sent_ns']} {event['receivedAt']}\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
