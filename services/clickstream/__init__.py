"""Clickstream: the platform's real-time event pipeline.

Event API (HTTP) -> raw Kafka topic -> Event Router (exactly-once fan-out) ->
one topic per destination -> destination workers (webhook, warehouse, redis).
"""

__version__ = "0.1.0"
