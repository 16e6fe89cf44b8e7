"""Delivery counts per destination (delivered, retried, dead-lettered, the last error),
added up in memory and written to the clickstream database every few seconds, where Pilot
and the CLI read them. While Postgres is away they keep adding up, and are written once
it is back (asked again only as the backoff allows)."""

from __future__ import annotations

import logging

import psycopg

from clickstream import storage
from clickstream.reconnect_backoff import ReconnectBackoff

log = logging.getLogger(__name__)


class DeliveryState:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._counts: dict[int, storage.DeliveryCounts] = {}
        self._backoff = ReconnectBackoff()

    def of(self, destination_id: int) -> storage.DeliveryCounts:
        """The counts not written yet of one destination, to add to."""
        counts = self._counts.get(destination_id)
        if counts is None:
            counts = self._counts[destination_id] = storage.DeliveryCounts()
        return counts

    def flush(self) -> None:
        pending = {k: v for k, v in self._counts.items() if not v.empty()}
        if not pending or not self._backoff.may_try():
            return
        try:
            with psycopg.connect(self._dsn, connect_timeout=3) as conn:
                for destination_id, counts in pending.items():
                    storage.record_delivery_state(conn, destination_id, counts)
        except psycopg.Error as exc:
            if not self._backoff.failing:
                log.warning("cannot record delivery state", extra={"error": str(exc)})
            self._backoff.failed()
            return
        self._backoff.succeeded()
        for destination_id in pending:
            self._counts[destination_id] = storage.DeliveryCounts()
