"""A Kafka producer whose callers wait until their messages are durable.

One instance per Event API process, driven by the process's event loop: librdkafka puts
what concurrent requests produce into shared batches, and the loop itself serves the
delivery reports (``poll``) while any are due, so a report resolves its request's
future directly, with no second thread contending for the interpreter.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException, Producer

from clickstream.config import Settings
from clickstream.kafka_clients import client_config

log = logging.getLogger(__name__)

# How often the loop asks librdkafka for delivery reports while messages are out: the
# most it adds to a request's answer.
POLL_INTERVAL_SECONDS = 0.001


class NotDurable(Exception):
    """Kafka did not acknowledge every message in time; the caller should answer 503."""


class _Waiter:
    """Counts down the delivery reports of one request's messages."""

    __slots__ = ("error", "future", "pending")

    def __init__(self, pending: int, future: asyncio.Future[None]) -> None:
        self.pending = pending
        self.error: KafkaError | None = None
        self.future = future

    def on_delivery(self, error: KafkaError | None, _message: object) -> None:
        self.settle(1, error)

    def settle(self, count: int, error: KafkaError | None = None) -> None:
        if error is not None and self.error is None:
            self.error = error
        self.pending -= count
        if self.pending == 0 and not self.future.done():
            self.future.set_result(None)


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
            "linger.ms": settings.producer_linger_ms,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            # librdkafka reports every message by then, delivered or failed.
            "message.timeout.ms": int(timeout_seconds * 1000),
            "queue.buffering.max.kbytes": 262144,
            **(extra_config or {}),
        })
        self._producer = Producer(self._config)
        self._lock = threading.Lock()
        self._waiting = 0  # requests whose reports are still due
        self._polling: asyncio.TimerHandle | None = None

    def _poll(self, loop: asyncio.AbstractEventLoop) -> None:
        self._producer.poll(0)  # runs the reports' callbacks, here on the loop
        self._polling = (loop.call_later(POLL_INTERVAL_SECONDS, self._poll, loop)
                         if self._waiting else None)

    async def produce_all(self, topic: str, messages: Sequence[tuple[bytes, bytes]],
                          headers: list[tuple[str, bytes]] | None = None) -> None:
        """Produce ``(key, value)`` pairs and return once all are acknowledged."""
        if not messages:
            return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(len(messages), loop.create_future())
        producer = self._producer
        produced = 0
        self._waiting += 1
        if self._polling is None:
            self._polling = loop.call_later(POLL_INTERVAL_SECONDS, self._poll, loop)
        try:
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
                await self._wait(waiter, loop)
                raise NotDurable(f"could not queue events for Kafka: {exc}") from exc
            if not await self._wait(waiter, loop):
                raise NotDurable("Kafka did not acknowledge in time")
        finally:
            self._waiting -= 1
        if waiter.error is not None:
            self._recover_if_fatal(waiter.error)
            raise NotDurable(f"Kafka refused the events: {waiter.error.str()}")

    async def _wait(self, waiter: _Waiter, loop: asyncio.AbstractEventLoop) -> bool:
        """Whether every report came; librdkafka's own timeout makes it so, this one
        only guards against a report that never comes."""
        if waiter.future.done():
            return True
        guard = loop.call_later(self._timeout + 1.0, _give_up, waiter.future)
        try:
            await waiter.future
        except TimeoutError:
            return False
        finally:
            guard.cancel()
        return True

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


def _give_up(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())
