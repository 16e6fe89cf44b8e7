"""Destination workers: one process type per destination kind."""

from __future__ import annotations

from clickstream.config import Settings


def run_worker(settings: Settings, kind: str) -> None:
    from clickstream.workers.delivery_loop import DeliveryLoop

    if kind == "webhook":
        from clickstream.workers.webhook import WebhookSink as sink_class
    elif kind == "warehouse":
        from clickstream.workers.warehouse import WarehouseSink as sink_class
    elif kind == "redis":
        from clickstream.workers.redis_profiles import RedisProfileSink as sink_class
    else:
        raise ValueError(f"unknown destination kind {kind!r}")
    DeliveryLoop(settings, kind, sink_class(settings)).run_forever()
