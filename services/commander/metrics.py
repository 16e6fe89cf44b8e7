"""Commander's Prometheus metrics. One gunicorn worker process serves Commander (its
queue lives in that process), so the default registry is the whole picture."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

REQUESTS = Counter("commander_http_requests_total", "HTTP requests answered.",
                   ["method", "route", "status"])
OPERATIONS = Counter("commander_operations_total", "Operations finished, by kind and state.",
                     ["kind", "state"])
QUEUE_DEPTH = Gauge("commander_queue_depth", "Operations waiting for the worker.")
REGISTRY_EVENTS = Counter("commander_registry_events_total",
                          "Registry notification events, by what came of them.", ["result"])
