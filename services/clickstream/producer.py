"""A Kafka producer whose callers wait until their messages are durable.

One instance per process, shared by all request threads: librdkafka batches what
concurrent requests produce, and a background thread serves delivery reports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, Producer

from clickstream.config import Settings
from clickstream.kafka_clients import client_config

log = logging.getLogger(__name__)


class NotDurable(Exception):
    """Kafka did not acknowledge every message in time; the caller should answer 503."""


class _Waiter:
    """Counts down delivery reports for one request's messages."""

    __slots__ = ("done", "error", "lock", "pending")

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self.error: KafkaError | None = None
        self.done = threading.Event()
        self.lock = threading.Lock()

    def on_delivery(self, error: KafkaError | None, _message: object) -> None:
        self.settle(1, error)

    def settle(self, count: int, error: KafkaError | None = None) -> None:
        with self.lock:
            if error is not None and self.error is None:
                self.error = error
            self.pending -= count
            if self.pending <= 0:
                self.done.set()


class DurableProducer:
    def __init__(self, settings: Settings, timeout_seconds: float = 5.0,
                 extra_config: dict[str, object] | None = None) -> None:
        self._timeout = timeout_seconds
        # The settings every client here shares (client_config), then the durability
        # this producer promises: idempotent, acknowledged by every in-sync replica.
        self._config = client_config(settings, **{
            "enable.idempotence": True,
            "acks": "all",
            # Same partition for a key as the Java client (and our partitioner module).
            "partitioner": "murmur2_random",
            "linger.ms": 2,
            "compression.type": "lz4",
            "message.timeout.ms": int(timeout_seconds * 1000),
            "queue.buffering.max.kbytes": 262144,
            **(extra_config or {}),
        })
        self._producer = Producer(self._config)
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._serve_reports, name="kafka-reports", daemon=True).start()

    def _serve_reports(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def produce_all(self, topic: str, messages: Iterable[tuple[bytes, bytes]],
                    headers: list[tuple[str, bytes]] | None = None) -> None:
        """Produce ``(key, value)`` pairs and return once all are acknowledged."""
        messages = list(messages)
        if not messages:
            return
        waiter = _Waiter(len(messages))
        producer = self._producer
        produced = 0
        try:
            for key, value in messages:
                producer.produce(topic, value, key, headers=headers,
                                 on_delivery=waiter.on_delivery)
                produced += 1
        except (BufferError, KafkaException) as exc:
            # What was produced may still land; the client retries the whole request
            # and consumers deduplicate on messageId (the ids the server derives for
            # events without one are the same on the retry).
            # Messages never handed to librdkafka get no report: settle them here.
            waiter.settle(len(messages) - produced)
            waiter.done.wait(self._timeout + 1.0)
            raise NotDurable(f"could not queue events for Kafka: {exc}") from exc
        if not waiter.done.wait(self._timeout + 1.0):
            raise NotDurable("Kafka did not acknowledge in time")
        if waiter.error is not None:
            self._recover_if_fatal(waiter.error)
            raise NotDurable(f"Kafka refused the events: {waiter.error.str()}")

    def _recover_if_fatal(self, error: KafkaError) -> None:
        if not error.fatal():
            return
        with self._lock:
            log.error("Kafka producer hit a fatal error; starting a new one",
                      extra={"error": error.str()})
            old, self._producer = self._producer, Producer(self._config)
        old.flush(1)

    def reachable(self, topic: str, timeout: float = 2.0) -> bool:
        try:
            metadata = self._producer.list_topics(topic, timeout=timeout)
        except KafkaException:
            return False
        found = metadata.topics.get(topic)
        return found is not None and found.error is None and bool(metadata.brokers)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
        self._closed.set()
