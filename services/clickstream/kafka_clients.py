"""Settings every Kafka client here shares, and graceful stop on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from clickstream.config import Settings

_kafka_log = logging.getLogger("kafka")


def client_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.kafka_bootstrap,
        # librdkafka's own log lines go through Python logging, hence JSON.
        "logger": _kafka_log,
        # Small requests (a transaction's control requests, one event's produce) must
        # not wait for Nagle's algorithm to meet the peer's delayed ACK (~40 ms).
        "socket.nagle.disable": True,
        **overrides,
    }


def stop_event() -> threading.Event:
    """An event set by SIGTERM or SIGINT, for long-running loops to finish cleanly."""
    stopping = threading.Event()

    def handle(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stopping
