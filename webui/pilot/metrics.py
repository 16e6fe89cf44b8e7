"""Pilot's Prometheus metrics. Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set (by
pilot.gunicorn_conf) before this is imported, and /metrics adds up every worker."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("pilot_http_requests_total", "Requests answered, by route and status.",
                   ["method", "route", "status"])
LATENCY = Histogram("pilot_http_request_seconds", "Time to answer a request, by route.",
                    ["route"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LOGINS = Counter("pilot_logins_total", "Login attempts, by outcome.", ["outcome"])
COMMANDER_CALLS = Counter("pilot_commander_requests_total",
                          "Requests to Commander's API, by outcome.", ["outcome"])


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
