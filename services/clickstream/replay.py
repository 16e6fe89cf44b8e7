"""``replay --destination ID``: send a destination's dead letters to it again.

Reads the dead-letter topic from where the last replay stopped up to its end as of
now, and writes each event back to the destination topic in one Kafka transaction
together with the replay group's offsets: a replay that dies part-way leaves no
duplicates, and running it twice does not send anything twice. The worker then
delivers the events as usual (after the newer ones already queued).
"""

from __future__ import annotations

import logging
import time

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from clickstream import storage
from clickstream.config import Settings
from clickstream.kafka_clients import client_config
from clickstream.topics import (
    DEAD_LETTER_HEADERS,
    TopicCreator,
    dead_letter_topic,
    destination_topic,
)

log = logging.getLogger(__name__)


def replay_dead_letters(settings: Settings, destination_id: int,
                        timeout_seconds: float = 60.0) -> int:
    """Replay every dead letter not replayed yet; return how many were sent."""
    with psycopg.connect(settings.postgres_dsn) as conn:
        storage.get_destination(conn, destination_id)  # raises NotFound for a bad id
    prefix = settings.topic_prefix
    source = dead_letter_topic(prefix, destination_id)
    target = destination_topic(prefix, destination_id)
    TopicCreator(settings.kafka_bootstrap, settings.topic_partitions).ensure([source, target])

    group = f"{prefix}.replay.{destination_id}"
    consumer = Consumer(client_config(settings, **{
        "group.id": group, "enable.auto.commit": False, "isolation.level": "read_committed",
    }))
    producer = Producer(client_config(settings, **{
        "transactional.id": group, "partitioner": "murmur2_random", "linger.ms": 5,
    }))
    try:
        producer.init_transactions(30)
        partitions = [TopicPartition(source, p)
                      for p in consumer.list_topics(source, timeout=10).topics[source].partitions]
        committed = consumer.committed(partitions, timeout=10)
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1]
                for tp in partitions}
        starts = {tp.partition: tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                  for tp in committed}
        pending = {p for p in ends if _start(starts[p]) < ends[p]}
        if not pending:
            return 0
        consumer.assign([TopicPartition(source, p, starts[p]) for p in pending])
        count = _copy(consumer, producer, target, pending, ends, timeout_seconds)
    finally:
        consumer.close()
    with psycopg.connect(settings.postgres_dsn) as conn:
        storage.record_delivery_state(conn, destination_id,
                                      storage.DeliveryCounts(replayed=count))
    log.info("dead letters replayed", extra={"destination": destination_id, "events": count})
    return count


def _start(offset: int) -> int:
    return 0 if offset == OFFSET_BEGINNING else offset


def _copy(consumer: Consumer, producer: Producer, target: str, pending: set[int],
          ends: dict[int, int], timeout_seconds: float) -> int:
    count = 0
    deadline = time.monotonic() + timeout_seconds
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"replay stopped after {count} events: dead-letter topic "
                               "did not deliver the rest in time")
        messages = [m for m in consumer.consume(500, 1.0) if m.error() is None]
        messages = [m for m in messages if m.offset() < ends[m.partition()]]
        if not messages:
            for tp in consumer.position(consumer.assignment()):
                if tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
            continue
        producer.begin_transaction()
        try:
            for message in messages:
                headers = [(k, v) for k, v in (message.headers() or [])
                           if k not in DEAD_LETTER_HEADERS]
                producer.produce(target, message.value(), message.key(),
                                 headers=[*headers, ("replayed", b"1")])
            offsets: dict[int, int] = {}
            for message in messages:
                offsets[message.partition()] = message.offset() + 1
            producer.send_offsets_to_transaction(
                [TopicPartition(messages[0].topic(), p, o) for p, o in offsets.items()],
                consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
        except KafkaException:
            producer.abort_transaction(30)
            raise
        count += len(messages)
        for partition, offset in offsets.items():
            if offset >= ends[partition]:
                pending.discard(partition)
    return count
