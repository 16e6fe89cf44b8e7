"""Warehouse loads in batches: a warehouse destination with ``load: batch`` is left alone
by the streaming warehouse workers; its events wait in its ``dest.<id>`` topic and are
loaded one time window at a time (Airflow's ``heliostat_warehouse_batches`` DAG runs this
for each such destination, every interval).

A window [start, end) is the run of offsets, in each partition, from the first event
the router wrote at or after ``start`` to the first at or after ``end`` (Kafka's
offsets_for_times). Consecutive windows therefore meet without gap or overlap, whatever
the clocks of late events say. Rows go in with the warehouse's own SQL, which inserts
only ids not loaded yet: loading a window again loads nothing twice. Events the warehouse
refuses for their data go to the destination's dead letters, as the streaming worker's
do; any other failure raises, and the next try loads the window again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import psycopg
from confluent_kafka import Consumer, Message, TopicPartition

from clickstream import storage
from clickstream.config import Settings
from clickstream.consumer_notices import is_notice
from clickstream.destination_settings import loaded_in_batches, parse_settings
from clickstream.kafka_clients import client_config
from clickstream.retry import DeliveryError
from clickstream.topics import TopicCreator, destination_topic
from clickstream.workers.dead_letters import DeadLetters
from clickstream.workers.sink import RoutedEvent
from clickstream.workers.warehouse import WarehouseSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowLoad:
    destination: int
    start: datetime
    end: datetime
    read: int        # events of the window in the topic
    refused: int     # of them, sent to dead letters


def settings_from_env(prefix: str) -> Settings:
    """The clickstream's settings from its usual variables each named with `prefix` first:
    where they share a process with another program's (Airflow's POSTGRES_* are its own)."""
    return Settings.from_env({name.removeprefix(prefix): value
                              for name, value in os.environ.items() if name.startswith(prefix)})


def batch_destinations(settings: Settings) -> list[storage.Destination]:
    """The enabled warehouse destinations loaded in batches."""
    with psycopg.connect(settings.postgres_dsn, connect_timeout=10) as conn:
        return [d for d in storage.list_destinations(conn, kind="warehouse")
                if d.enabled and loaded_in_batches(d.kind, d.settings)]


def load_window(settings: Settings, destination_id: int, start: datetime, end: datetime,
                timeout_seconds: float = 600.0) -> WindowLoad:
    """Load the destination's events of [start, end) into its warehouse."""
    if end <= start:
        raise ValueError(f"the window ends ({end.isoformat()}) before it starts "
                         f"({start.isoformat()})")
    if end > datetime.now(timezone.utc):
        # Events the router writes before it ends would fall between this window and
        # the next.
        raise ValueError(f"the window ends in the future ({end.isoformat()}): load it "
                         "once it has passed")
    with psycopg.connect(settings.postgres_dsn, connect_timeout=10) as conn:
        destination = storage.get_destination(conn, destination_id)
    if not loaded_in_batches(destination.kind, destination.settings):
        raise ValueError(f"destination {destination_id} ({destination.name}) is not a "
                         "warehouse loaded in batches (settings: load=batch)")
    batch_size = parse_settings("warehouse", destination.settings).batch_size
    topic = destination_topic(settings.topic_prefix, destination_id)
    topics = TopicCreator(settings.kafka_bootstrap, settings.topic_partitions)
    topics.ensure([topic])
    consumer = Consumer(client_config(settings, **{
        "group.id": f"{settings.topic_prefix}.batch-load.{destination_id}",
        "enable.auto.commit": False, "isolation.level": "read_committed",
    }))
    sink, dead_letters = WarehouseSink(settings), DeadLetters(settings, topics)
    read = refused = 0
    try:
        ranges = _offset_ranges(consumer, topic, start, end)
        for batch in _batches(consumer, topic, ranges, batch_size, timeout_seconds):
            read += len(batch)
            refused += _deliver(sink, dead_letters, destination, batch)
    finally:
        consumer.close()
        dead_letters.close()
    result = WindowLoad(destination_id, start, end, read, refused)
    log.info("warehouse window loaded", extra={
        "destination": destination_id, "start": start.isoformat(), "end": end.isoformat(),
        "events": read, "dead_lettered": refused})
    return result


def _offset_ranges(consumer: Consumer, topic: str, start: datetime,
                   end: datetime) -> dict[int, tuple[int, int]]:
    """Partition -> [first, past-last) offsets of the window, for partitions it has."""
    partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    # Where no event is that late: the partition's end.
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions}

    def offsets_at(moment: datetime) -> dict[int, int]:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, int(moment.timestamp() * 1000)) for p in partitions],
            timeout=10)
        return {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition]
                for tp in found}

    firsts, pasts = offsets_at(start), offsets_at(end)
    return {p: (firsts[p], pasts[p]) for p in partitions if firsts[p] < pasts[p]}


def _batches(consumer: Consumer, topic: str, ranges: dict[int, tuple[int, int]],
             size: int, timeout_seconds: float) -> Iterator[list[Message]]:
    """The window's events, at most `size` at a time."""
    if not ranges:
        return
    consumer.assign([TopicPartition(topic, p, first) for p, (first, _) in ranges.items()])
    pending = set(ranges)
    batch: list[Message] = []
    deadline = time.monotonic() + timeout_seconds
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic} did not hand out the window's events in "
                               f"{timeout_seconds:.0f}s")
        for message in consumer.consume(min(size, 500), 1.0):
            if is_notice(message) or message.offset() >= ranges[message.partition()][1]:
                continue
            batch.append(message)
            if len(batch) >= size:
                yield batch
                batch = []
        # By position, not by the last event seen: a transaction's commit marker may be
        # the window's last offset.
        for tp in consumer.position([TopicPartition(topic, p) for p in pending]):
            if tp.offset >= ranges[tp.partition][1]:
                pending.discard(tp.partition)
                consumer.pause([TopicPartition(topic, tp.partition)])
    if batch:
        yield batch


def _deliver(sink: WarehouseSink, dead_letters: DeadLetters,
             destination: storage.Destination, batch: list[Message]) -> int:
    """Load a batch; the events the warehouse refuses go to dead letters. How many."""
    try:
        sink.deliver(destination, [RoutedEvent(m.value(), m.key(), m.headers() or [])
                                   for m in batch])
        return 0
    except DeliveryError as exc:
        if exc.retryable:
            raise
        refused = [batch[i] for i in exc.rejected or range(len(batch))]
        if not dead_letters.write(destination.id, refused, str(exc), attempts=1):
            raise RuntimeError("the refused events could not be written to dead letters; "
                               "the window is loaded again on the next try") from None
        return len(refused)
