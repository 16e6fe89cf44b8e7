"""The loop every destination worker runs: consume, deliver, retry, dead-letter.

The worker consumes the topics of all enabled destinations of its kind. Each
partition is worked through in order, one batch at a time: while the batch at its
head is being retried, nothing behind it goes out, so one user's events (one key,
one partition) arrive in order. Different partitions are delivered concurrently by
a thread pool. Offsets are committed only for events delivered or dead-lettered,
so a crash means redelivery, never loss.

Its parts: `subscription` (which topics), `partition_work` (a partition's queue, and
flow control), `dead_letters`, `consumer_lag`, `delivery_state` (the counts Pilot
shows); this module dispatches batches to the sink and handles their outcomes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import islice

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from clickstream import metrics, storage
from clickstream.catalog import DestinationCatalog
from clickstream.config import Settings
from clickstream.consumer_notices import is_notice
from clickstream.destination_settings import InvalidSettings, RetryPolicy, parse_settings
from clickstream.kafka_clients import client_config, stop_event
from clickstream.retry import DeliveryError
from clickstream.topics import TopicCreator, destination_id_of
from clickstream.workers.consumer_lag import report_lag
from clickstream.workers.dead_letters import DeadLetters
from clickstream.workers.delivery_state import DeliveryState
from clickstream.workers.partition_work import PartitionWork, control_flow
from clickstream.workers.sink import RoutedEvent, Sink
from clickstream.workers.subscription import Subscription

log = logging.getLogger(__name__)

STATE_FLUSH_SECONDS = 5.0


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
        self.dead_letters = DeadLetters(settings, self.topics)
        self.work: dict[tuple[str, int], PartitionWork] = {}
        self.subscription = Subscription(self.consumer, self.catalog, self.topics, prefix,
                                         kind, self._on_revoke)
        self.state = DeliveryState(settings.postgres_dsn)
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
            self.subscription.follow_catalog()
        busy = any(w.queue for w in self.work.values())
        # What has arrived, without waiting; else wait briefly for the next event
        # (consume(n, timeout) would wait the whole timeout for n events).
        messages = self.consumer.consume(1000, 0) or self.consumer.consume(
            1, 0.002 if busy else 0.05)
        for message in messages:
            if not is_notice(message):  # a fatal error raises: exit, to be restarted
                self._work_for(message.topic(), message.partition()).queue.append(message)
        self._collect_finished()
        self._dispatch()
        control_flow(self.consumer, self.work)
        if self._every("lag", 5.0):
            report_lag(self.consumer, self.work, self.prefix)
        if self._every("state", STATE_FLUSH_SECONDS):
            self.state.flush()

    def _shutdown(self) -> None:
        self._wait_inflight(list(self.work))
        with contextlib.suppress(KafkaException):  # nothing stored since the last commit
            self.consumer.commit(asynchronous=False)
        self.consumer.close()
        self.dead_letters.close()
        self.state.flush()
        self.pool.shutdown(wait=True)
        log.info("worker stopped", extra={"kind": self.kind})

    def _every(self, name: str, seconds: float) -> bool:
        now = time.monotonic()
        if now - self._timers.get(name, 0.0) >= seconds:
            self._timers[name] = now
            return True
        return False

    # -- partitions ---------------------------------------------------------------

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
            elif isinstance(error, DeliveryError) and error.rejected:
                self._partly_delivered(work, batch, error)
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
        self._count_delivered(work, batch)

    def _count_delivered(self, work: PartitionWork, delivered: list[Message]) -> None:
        metrics.DELIVERED.labels(str(work.destination_id), self.kind).inc(len(delivered))
        now_ms = time.time() * 1000
        histogram = metrics.DELIVERY_LATENCY.labels(self.kind)
        for message in delivered:
            kind, stamp = message.timestamp()
            if kind and stamp > 0:
                histogram.observe(max(0.0, now_ms - stamp) / 1000)
        self.state.of(work.destination_id).delivered += len(delivered)

    def _partly_delivered(self, work: PartitionWork, batch: list[Message],
                          error: DeliveryError) -> None:
        """The destination took all but some events, which it will never take as they
        are: those go to dead letters, the batch is done."""
        rejected = [batch[i] for i in sorted(set(error.rejected)) if 0 <= i < len(batch)]
        work.retry.failed(time.monotonic(), error, self._retry_policy(work.destination_id))
        self.state.of(work.destination_id).last_error = str(error)[:1000]
        if not self._write_dead_letters(work, rejected):
            # Kept whole: delivering again the events taken is harmless (the sinks
            # that reject single events deduplicate), losing the rejected ones is not.
            self._keep_for_later(work, batch)
            return
        work.retry.reset()
        self._store_offset(batch[-1])
        rejected_ids = {id(m) for m in rejected}
        self._count_delivered(work, [m for m in batch if id(m) not in rejected_ids])

    def _retry_later(self, work: PartitionWork, batch: list[Message],
                     error: BaseException) -> bool:
        if not isinstance(error, DeliveryError):
            log.error("delivery failed unexpectedly", exc_info=error,
                      extra={"destination": work.destination_id})
            error = DeliveryError(f"{type(error).__name__}: {error}")
        policy = self._retry_policy(work.destination_id)
        again = work.retry.failed(time.monotonic(), error, policy)
        counts = self.state.of(work.destination_id)
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
        if not self._write_dead_letters(work, batch):
            self._keep_for_later(work, batch)
            return
        work.retry.reset()
        self._store_offset(batch[-1])

    def _write_dead_letters(self, work: PartitionWork, batch: list[Message]) -> bool:
        error = (work.retry.last_error or "unknown error")[:2000]
        if not self.dead_letters.write(work.destination_id, batch, error, work.retry.attempts):
            return False
        log.warning("events dead-lettered",
                    extra={"destination": work.destination_id, "events": len(batch),
                           "attempts": work.retry.attempts, "error": error})
        metrics.DEAD_LETTERED.labels(str(work.destination_id), self.kind).inc(len(batch))
        self.state.of(work.destination_id).dead_lettered += len(batch)
        return True

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
