"""Runs the Event API in granian: ``python -m clickstream event-api``.

Why granian and RSGI rather than gunicorn and Flask: its HTTP layer is Rust, and an
event loop lets one process hold thousands of requests waiting for Kafka's
acknowledgement, whose events then share produce batches. bench/clickstream/README.md
has the measurements behind the choice.

Settings (environment): ``EVENT_API_BIND`` (``0.0.0.0:8080``), ``WEB_CONCURRENCY``
(worker processes, default: cores), ``LOG_LEVEL``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

# Metrics from all workers are aggregated through files in this directory; it must be
# set before prometheus_client is first imported (by the app, in each worker).
_METRICS_DIR = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                                     tempfile.mkdtemp(prefix="clickstream-metrics-"))

from granian.constants import Interfaces, Loops  # noqa: E402
from granian.server import Server  # noqa: E402

from clickstream.jsonlog import configure_logging  # noqa: E402

# Requests one worker holds at once; beyond it the server stops accepting for a while.
BACKPRESSURE = 2048
# How long a stopping worker may take to answer what it holds (Kafka's timeout is 5 s).
STOP_TIMEOUT_SECONDS = 20


def _log_config(level: str) -> dict[str, Any]:
    """granian's own messages as JSON lines too, and no access log: a line per tracking
    request would cost more than the request (metrics count them instead)."""
    json_handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout",
                    "formatter": "json"}
    return {
        "formatters": {"json": {"()": "clickstream.jsonlog.JsonFormatter"}},
        "handlers": {"console": json_handler, "access": json_handler},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"_granian": {"handlers": ["console"], "level": level,
                                 "propagate": False}},
    }


def serve(bind: str | None = None, workers: int | None = None) -> None:
    bind = bind or os.environ.get("EVENT_API_BIND", "0.0.0.0:8080")
    workers = workers or int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    host, _, port = bind.rpartition(":")
    # Files left by a previous run would add stale counts.
    shutil.rmtree(_METRICS_DIR, ignore_errors=True)
    os.makedirs(_METRICS_DIR, exist_ok=True)
    configure_logging(level)
    Server(
        "clickstream.event_api:application",
        address=host.strip("[]") or "0.0.0.0",
        port=int(port),
        interface=Interfaces.RSGI,
        workers=workers,
        loop=Loops.uvloop,
        backpressure=BACKPRESSURE,
        websockets=False,
        log_level=level.lower(),
        log_dictconfig=_log_config(level),
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=STOP_TIMEOUT_SECONDS,
    ).serve()
