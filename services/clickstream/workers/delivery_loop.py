"""The loop every destination worker runs: consume, deliver, retry, dead-letter.

The worker consumes the topics of all enabled destinations of its kind. Each
partition is worked through in order, one batch at a time: while the batch at its
head is being retried, nothing behind it goes out, so one user's events (one key,
one partition) arrive in order. Different partitions are delivered concurrently by
a thread pool. Offsets are committed only for events delivered or dead-lettered,
so a crash means redelivery, never loss.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice

import psycopg
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from clickstream import metrics, storage
from clickstream.catalog import DestinationCatalog
from clickstream.config import Settings
from clickstream.destination_settings import InvalidSettings, RetryPolicy, parse_settings
from clickstream.kafka_clients import client_config, stop_event
from clickstream.retry import DeliveryError, RetryState
from clickstream.topics import (
    TopicCreator,
    dead_letter_topic,
    destination_id_of,
    destination_topic,
)
from clickstream.workers.sink import RoutedEvent, Sink

log = logging.getLogger(__name__)

# A partition stops being fetched above this many queued events, and resumes below half.
QUEUE_HIGH = 5000
STATE_FLUSH_SECONDS = 5.0


@dataclass
class PartitionWork:
    destination_id: int
    queue: deque[Message] = field(default_factory=deque)
    inflight: Future[None] | None = None
    inflight_count: int = 0
    retry: RetryState = field(default_factory=RetryState)
    paused: bool = False
    #: Offset of the next event not yet delivered, for the lag metric.
    next_offset: int = -1


class DeliveryLoop:
    def __init__(self, settings: Settings, kind: str, sink: Sink,
                 threads: int | None = None) -> None:
        self.settings = settings
        self.kind = kind
        self.sink = sink
        prefix = settings.topic_prefix
        self.prefix = prefix
        self.catalog = DestinationCatalog(settings.postgres_dsn, kind=kind)
        self.topics = TopicCreator(settings.kafka_bootstrap, settings.topic_partitions)
        self.pool = ThreadPoolExecutor(
            threads or int(os.environ.get("CLICKSTREAM_WORKER_THREADS", "16")),
            thread_name_prefix=f"{kind}-deliver",
        )
        self.consumer = Consumer(client_config(
            settings,
            **{
                "group.id": f"{prefix}.worker.{kind}",
                "enable.auto.commit": True,
                # Offsets are stored by hand once events are delivered or dead-lettered.
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "session.timeout.ms": 10000,
                "topic.metadata.refresh.interval.ms": 10000,
            },
        ))
        self.dead_letters = Producer(client_config(
            settings,
            **{"enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random",
               "linger.ms": 5},
        ))
        self.work: dict[tuple[str, int], PartitionWork] = {}
        self.counts: dict[int, storage.DeliveryCounts] = {}
        self._subscribed: list[str] | None = None
        self._catalog_version = -1
        self._timers: dict[str, float] = {}
        self.last_progress = time.monotonic()

    # -- lifecycle ----------------------------------------------------------------

    def run_forever(self) -> None:
        stopping = stop_event()
        metrics.serve_metrics(self.settings.metrics_port, self.healthy)
        self.run(stopping)

    def healthy(self) -> bool:
        return time.monotonic() - self.last_progress < 60

    def run(self, stopping: threading.Event) -> None:
        log.info("worker started", extra={"kind": self.kind})
        try:
            while not stopping.is_set():
                self.step()
        finally:
            self._shutdown()

    def step(self) -> None:
        self.last_progress = time.monotonic()
        if self._every("subscribe", 1.0):
            self._subscribe_if_changed()
        busy = any(w.queue for w in self.work.values())
        # What has arrived, without waiting; else wait briefly for the next event
        # (consume(n, timeout) would wait the whole timeout for n events).
        messages = self.consumer.consume(1000, 0) or self.consumer.consume(
            1, 0.002 if busy else 0.05)
        for message in messages:
            if message.error():
                if message.error().fatal():
                    raise KafkaException(message.error())  # exit; the orchestrator restarts
                if message.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error", extra={"error": message.error().str()})
                continue
            self._work_for(message.topic(), message.partition()).queue.append(message)
        self._collect_finished()
        self._dispatch()
        self._flow_control()
        if self._every("lag", 5.0):
            self._report_lag()
        if self._every("state", STATE_FLUSH_SECONDS):
            self._flush_delivery_state()

    def _shutdown(self) -> None:
        self._wait_inflight(list(self.work))
        with contextlib.suppress(KafkaException):  # nothing stored since the last commit
            self.consumer.commit(asynchronous=False)
        self.consumer.close()
        self.dead_letters.flush(10)
        self._flush_delivery_state()
        self.pool.shutdown(wait=True)
        log.info("worker stopped", extra={"kind": self.kind})

    def _every(self, name: str, seconds: float) -> bool:
        now = time.monotonic()
        if now - self._timers.get(name, 0.0) >= seconds:
            self._timers[name] = now
            return True
        return False

    # -- subscription -------------------------------------------------------------

    def _subscribe_if_changed(self) -> None:
        destinations = self.catalog.enabled()
        if self.catalog.version == self._catalog_version:
            return
        self._catalog_version = self.catalog.version
        topics = sorted(destination_topic(self.prefix, d.id) for d in destinations)
        if topics == self._subscribed:
            return
        if topics:
            try:
                self.topics.ensure(topics)
            except (KafkaException, TimeoutError) as exc:
                log.warning("cannot create destination topics yet", extra={"error": str(exc)})
                self._catalog_version = -1  # try again on the next round
                return
            self.consumer.subscribe(topics, on_revoke=self._on_revoke, on_lost=self._on_revoke)
        else:
            self.consumer.unsubscribe()
        self._subscribed = topics
        log.info("subscribed", extra={"kind": self.kind, "topics": topics})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._wait_inflight(keys)
        with contextlib.suppress(KafkaException):  # nothing stored since the last commit
            consumer.commit(asynchronous=False)
        for key in keys:
            self.work.pop(key, None)  # its new owner re-reads from the committed offset

    def _work_for(self, topic: str, partition: int) -> PartitionWork:
        key = (topic, partition)
        work = self.work.get(key)
        if work is None:
            work = self.work[key] = PartitionWork(destination_id_of(self.prefix, topic))
        return work

    # -- delivery -----------------------------------------------------------------

    def _dispatch(self) -> None:
        now = time.monotonic()
        for work in self.work.values():
            if work.inflight is not None or not work.queue or now < work.retry.next_attempt_at:
                continue
            destination = self.catalog.get(work.destination_id)
            if destination is None:
                continue  # deleted: the next subscription change drops the partition
            size = self._batch_size(destination)
            if len(work.queue) < size and self._young(work.queue[0], destination):
                continue  # let a micro-batch fill up
            batch = list(islice(work.queue, size))
            events = [RoutedEvent(m.value(), m.key(), m.headers() or []) for m in batch]
            work.inflight_count = len(batch)
            work.inflight = self.pool.submit(self.sink.deliver, destination, events)

    def _young(self, message: Message, destination: storage.Destination) -> bool:
        """Whether the oldest waiting event is younger than the destination's linger."""
        try:
            linger = self.sink.linger_seconds(destination)
        except InvalidSettings:
            return False
        _kind, stamp = message.timestamp()  # when the Event API accepted it
        return linger > 0 and time.time() - stamp / 1000 < linger

    def _batch_size(self, destination: storage.Destination) -> int:
        try:
            return self.sink.batch_size(destination)
        except InvalidSettings:
            return 1

    def _collect_finished(self, keys: list[tuple[str, int]] | None = None) -> None:
        for key in keys or list(self.work):
            work = self.work.get(key)
            if work is None or work.inflight is None or not work.inflight.done():
                continue
            error = work.inflight.exception()
            work.inflight = None
            batch = [work.queue.popleft() for _ in range(work.inflight_count)]
            if error is None:
                self._delivered(work, batch)
            elif not self._retry_later(work, batch, error):
                self._dead_letter(work, batch)
            else:
                for message in reversed(batch):
                    work.queue.appendleft(message)

    def _wait_inflight(self, keys: list[tuple[str, int]]) -> None:
        for key in keys:
            work = self.work.get(key)
            if work is not None and work.inflight is not None:
                work.inflight.exception()  # waits; outcomes are handled just below
        self._collect_finished(keys)

    def _delivered(self, work: PartitionWork, batch: list[Message]) -> None:
        work.retry.reset()
        self._store_offset(batch[-1])
        destination = str(work.destination_id)
        metrics.DELIVERED.labels(destination, self.kind).inc(len(batch))
        now_ms = time.time() * 1000
        histogram = metrics.DELIVERY_LATENCY.labels(self.kind)
        for message in batch:
            kind, stamp = message.timestamp()
            if kind and stamp > 0:
                histogram.observe(max(0.0, now_ms - stamp) / 1000)
        self._counts(work.destination_id).delivered += len(batch)

    def _retry_later(self, work: PartitionWork, batch: list[Message],
                     error: BaseException) -> bool:
        if not isinstance(error, DeliveryError):
            log.error("delivery failed unexpectedly", exc_info=error,
                      extra={"destination": work.destination_id})
            error = DeliveryError(f"{type(error).__name__}: {error}")
        policy = self._retry_policy(work.destination_id)
        again = work.retry.failed(time.monotonic(), error, policy)
        counts = self._counts(work.destination_id)
        counts.last_error = str(error)[:1000]
        if again:
            metrics.RETRIED.labels(str(work.destination_id), self.kind).inc(len(batch))
            counts.retried += len(batch)
            log.info("delivery failed; will retry",
                     extra={"destination": work.destination_id, "error": str(error),
                            "attempt": work.retry.attempts,
                            "retry_in": round(work.retry.next_attempt_at - time.monotonic(), 3)})
        return again

    def _retry_policy(self, destination_id: int) -> RetryPolicy:
        destination = self.catalog.get(destination_id)
        try:
            return parse_settings(self.kind, destination.settings).retry
        except (InvalidSettings, AttributeError):
            return RetryPolicy()

    def _dead_letter(self, work: PartitionWork, batch: list[Message]) -> None:
        topic = dead_letter_topic(self.prefix, work.destination_id)
        error = (work.retry.last_error or "unknown error")[:2000]
        try:
            self.topics.ensure([topic])
        except (KafkaException, TimeoutError) as exc:
            log.error("dead-letter topic unavailable", extra={
                "destination": work.destination_id, "error": str(exc)})
            self._keep_for_later(work, batch)
            return
        extra = [("error", error.encode()), ("attempts", str(work.retry.attempts).encode()),
                 ("failed_at", str(int(time.time() * 1000)).encode())]
        for message in batch:
            headers = [(k, v) for k, v in (message.headers() or [])
                       if k not in ("error", "attempts", "failed_at")]
            self.dead_letters.produce(topic, message.value(), message.key(),
                                      headers=headers + extra)
        remaining = self.dead_letters.flush(30)
        if remaining:
            log.error("dead-letter topic unavailable", extra={"destination": work.destination_id})
            self._keep_for_later(work, batch)
            return
        log.warning("events dead-lettered",
                    extra={"destination": work.destination_id, "events": len(batch),
                           "attempts": work.retry.attempts, "error": error})
        work.retry.reset()
        self._store_offset(batch[-1])
        metrics.DEAD_LETTERED.labels(str(work.destination_id), self.kind).inc(len(batch))
        self._counts(work.destination_id).dead_lettered += len(batch)

    @staticmethod
    def _keep_for_later(work: PartitionWork, batch: list[Message]) -> None:
        """Dead letters not durable: keep the events (a dead letter written twice is
        harmless, one lost is not) and go through delivery and budget again later."""
        for message in reversed(batch):
            work.queue.appendleft(message)
        work.retry.next_attempt_at = time.monotonic() + 5

    def _store_offset(self, message: Message) -> None:
        try:
            self.consumer.store_offsets(offsets=[
                TopicPartition(message.topic(), message.partition(), message.offset() + 1)
            ])
        except KafkaException as exc:
            # The partition was revoked meanwhile; its new owner redelivers from the
            # last commit, which consumers must tolerate anyway (at least once).
            log.info("offset not stored", extra={"error": str(exc)})

    # -- flow control, lag, state -------------------------------------------------

    def _flow_control(self) -> None:
        pause, resume = [], []
        for (topic, partition), work in self.work.items():
            if not work.paused and len(work.queue) >= QUEUE_HIGH:
                work.paused = True
                pause.append(TopicPartition(topic, partition))
            elif work.paused and len(work.queue) < QUEUE_HIGH // 2:
                work.paused = False
                resume.append(TopicPartition(topic, partition))
        try:
            if pause:
                self.consumer.pause(pause)
            if resume:
                self.consumer.resume(resume)
        except KafkaException as exc:
            log.info("pause/resume skipped", extra={"error": str(exc)})

    def _report_lag(self) -> None:
        lag: dict[int, int] = {}
        try:
            assignment = self.consumer.assignment()
            positions = {(tp.topic, tp.partition): tp.offset
                         for tp in self.consumer.position(assignment)}
            for tp in assignment:
                key = (tp.topic, tp.partition)
                work = self.work.get(key)
                position = work.queue[0].offset() if work and work.queue else positions.get(key)
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                destination_id = destination_id_of(self.prefix, tp.topic)
                if position is not None and position >= 0 and high >= 0:
                    lag[destination_id] = lag.get(destination_id, 0) + max(0, high - position)
                else:
                    lag.setdefault(destination_id, 0)
        except KafkaException:
            return
        for destination_id, value in lag.items():
            metrics.CONSUMER_LAG.labels(str(destination_id)).set(value)

    def _counts(self, destination_id: int) -> storage.DeliveryCounts:
        counts = self.counts.get(destination_id)
        if counts is None:
            counts = self.counts[destination_id] = storage.DeliveryCounts()
        return counts

    def _flush_delivery_state(self) -> None:
        pending = {k: v for k, v in self.counts.items() if not v.empty()}
        if not pending:
            return
        try:
            with psycopg.connect(self.settings.postgres_dsn, connect_timeout=3) as conn:
                for destination_id, counts in pending.items():
                    storage.record_delivery_state(conn, destination_id, counts)
        except psycopg.Error as exc:
            log.warning("cannot record delivery state", extra={"error": str(exc)})
            return
        for destination_id in pending:
            self.counts[destination_id] = storage.DeliveryCounts()
