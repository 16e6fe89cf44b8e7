"""Prometheus metrics shared by every process, and the small HTTP server that
exposes ``/health`` and ``/metrics`` for the router and the workers.

The Event API runs in granian with several worker processes; there
``PROMETHEUS_MULTIPROC_DIR`` is set (by ``event_api_server``) before this module is
imported, and ``/metrics`` aggregates all workers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Event API
RECEIVED = Counter("clickstream_events_received_total",
                   "Events in requests that passed authentication and parsing.")
REJECTED = Counter("clickstream_events_rejected_total",
                   "Requests (or their events) refused, by reason.", ["reason"])
PRODUCED = Counter("clickstream_events_produced_total",
                   "Events acknowledged by Kafka on the raw topic.")
RESPONSES = Counter("clickstream_http_responses_total",
                    "HTTP answers of the Event API, by status code.", ["code"])

# Router
ROUTED = Counter("clickstream_events_routed_total",
                 "Events written to a destination topic.", ["destination"])
INVALID = Counter("clickstream_events_invalid_total",
                  "Events sent to the invalid-events topic, by reason.", ["reason"])
ROUTER_BATCHES = Histogram("clickstream_router_batch_seconds",
                           "Time to route and commit one transaction.")

# Workers
DELIVERED = Counter("clickstream_events_delivered_total",
                    "Events delivered to a destination.", ["destination", "kind"])
RETRIED = Counter("clickstream_events_retried_total",
                  "Delivery attempts that failed and will be retried.", ["destination", "kind"])
DEAD_LETTERED = Counter("clickstream_events_dead_lettered_total",
                        "Events given up on and written to the dead-letter topic.",
                        ["destination", "kind"])
DELIVERY_LATENCY = Histogram("clickstream_delivery_latency_seconds",
                             "From acceptance by the Event API to delivery.", ["kind"],
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                                      10, 30, 60, 300))
CONSUMER_LAG = Gauge("clickstream_consumer_lag",
                     "Messages not yet consumed, per destination (or 'router' for raw).",
                     ["destination"], multiprocess_mode="max")


def render_metrics() -> tuple[bytes, str]:
    """The exposition text for this process, or for all Event API workers."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


def serve_metrics(port: int, healthy: Callable[[], bool]) -> ThreadingHTTPServer:
    """Serve ``/health`` and ``/metrics`` on ``port`` from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, content_type = render_metrics()
                status = 200
            elif self.path == "/health":
                ok = healthy()
                body, content_type = (b"ok\n" if ok else b"unhealthy\n"), "text/plain"
                status = 200 if ok else 503
            else:
                body, content_type, status = b"not found\n", "text/plain", 404
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would drown the JSON logs

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
