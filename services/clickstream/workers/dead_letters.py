"""Dead letters: the events a destination's worker gave up on, written to the
destination's `dead.<id>` topic with why (the DEAD_LETTER_HEADERS), for a replay.

A batch counts as written only once the broker acknowledged every one of its events
(acks=all): a dead letter Kafka refused or timed out is reported as not written, and the
worker keeps the events rather than storing their offsets — a dead letter written twice
is harmless, one lost is not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from clickstream.config import Settings
from clickstream.kafka_clients import client_config
from clickstream.topics import DEAD_LETTER_HEADERS, TopicCreator, dead_letter_topic

log = logging.getLogger(__name__)

#: How long one batch may take to be acknowledged before it counts as not written.
FLUSH_SECONDS = 30.0


class DeadLetters:
    def __init__(self, settings: Settings, topics: TopicCreator) -> None:
        self.prefix = settings.topic_prefix
        self.topics = topics
        self.producer = Producer(client_config(
            settings,
            **{"enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random",
               "linger.ms": 5, "on_delivery": self._on_delivery},
        ))
        self._failures: list[KafkaError] = []

    def write(self, destination_id: int, batch: Sequence[Message], error: str,
              attempts: int) -> bool:
        """True once every event of `batch` is stored in the dead-letter topic."""
        topic = dead_letter_topic(self.prefix, destination_id)
        try:
            self.topics.ensure([topic])
        except (KafkaException, TimeoutError) as exc:
            log.error("dead-letter topic unavailable",
                      extra={"destination": destination_id, "error": str(exc)})
            return False
        why = [("error", error.encode()), ("attempts", str(attempts).encode()),
               ("failed_at", str(int(time.time() * 1000)).encode())]
        self._failures = []
        for message in batch:
            headers = [(k, v) for k, v in (message.headers() or [])
                       if k not in DEAD_LETTER_HEADERS]
            while True:
                try:
                    self.producer.produce(topic, message.value(), message.key(),
                                          headers=headers + why)
                    break
                except BufferError:
                    self.producer.poll(0.05)  # local queue full: let deliveries drain
        remaining = self.producer.flush(FLUSH_SECONDS)
        failures, self._failures = self._failures, []
        if remaining or failures:
            reason = (f"{remaining} not acknowledged in {FLUSH_SECONDS:.0f}s" if remaining
                      else failures[0].str())
            log.error("dead letters not written; the events are kept",
                      extra={"destination": destination_id, "events": len(batch),
                             "error": reason})
            return False
        return True

    def close(self) -> None:
        self.producer.flush(10)

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._failures.append(error)
