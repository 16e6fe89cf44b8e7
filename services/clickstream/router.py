"""The Event Router: raw topic -> one topic per destination, exactly once.

Each poll's worth of events is routed inside one Kafka transaction that also commits
the consumed offsets (consume-transform-produce). If the router dies mid-batch the
transaction is aborted, read_committed consumers never see its output, and the
events are routed again from the committed offsets: each event lands in each
destination topic exactly once.

With several routers, a rebalance can land while a batch is being fetched: then it holds
messages of a partition now another router's (which reads it from the committed offsets
too), or messages fetched a second time, from the committed offset once the partition
was assigned here again. Neither is routed (see `_new_events`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from clickstream import metrics
from clickstream.catalog import DestinationCatalog
from clickstream.config import Settings
from clickstream.consumer_notices import is_notice
from clickstream.kafka_clients import client_config, stop_event
from clickstream.recent_events import RecentEvents
from clickstream.routing import select_destinations
from clickstream.topics import TopicCreator, destination_topic, invalid_topic, raw_topic

log = logging.getLogger(__name__)

BATCH_MESSAGES = 5000
IDLE_POLL_SECONDS = 0.1
TRANSACTION_TIMEOUT_MS = 15000
TRANSACTIONAL_PRODUCERS = 2


@dataclass(frozen=True)
class Routing:
    """What becomes of one event: the topics it is copied to, and with which headers."""

    app_id: int
    topics: list[str]
    headers: list[tuple[str, bytes]]
    destination_ids: list[int] = field(default_factory=list)
    invalid_reason: str | None = None


class Router:
    def __init__(self, settings: Settings, router_id: str | None = None,
                 catalog: DestinationCatalog | None = None) -> None:
        self.settings = settings
        prefix = settings.topic_prefix
        self.raw = raw_topic(prefix)
        self.invalid = invalid_topic(prefix)
        # A stable id per replica: after a crash, the restarted router fences its
        # predecessor's open transaction at once instead of waiting for it to time out,
        # and static group membership hands it the same partitions without a rebalance.
        self.router_id = router_id or router_id_from_env(os.environ)
        self.catalog = catalog or DestinationCatalog(settings.postgres_dsn)
        self.topics = TopicCreator(settings.kafka_bootstrap, settings.topic_partitions)
        self.recent = RecentEvents(settings.redis_url, prefix)
        self.consumer = Consumer(client_config(
            settings,
            **{
                "group.id": f"{prefix}.router",
                "group.instance.id": self.router_id,
                "session.timeout.ms": 10000,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "fetch.min.bytes": 1,
                "queued.min.messages": 20000,
            },
        ))
        # The producers take turns, one transaction each: after a commit the broker
        # still writes that transaction's markers, and until it is done it answers the
        # same producer's next transaction with CONCURRENT_TRANSACTIONS, which librdkafka
        # retries only after 20 ms. The next producer in turn starts at once. The first
        # keeps the router's original transactional id, so an upgrade fences a
        # predecessor's open transaction as before.
        self.producers = [
            self._new_producer(f"{prefix}.router.{self.router_id}{f'.{turn}' if turn else ''}")
            for turn in range(TRANSACTIONAL_PRODUCERS)]
        self._turn = 0
        self._failed_deliveries: list[KafkaError] = []
        #: The highest offset routed and committed, per raw-topic partition.
        self._routed: dict[tuple[str, int], int] = {}
        self.last_progress = time.monotonic()
        self._lag_checked = 0.0

    def _new_producer(self, transactional_id: str) -> Producer:
        return Producer(client_config(
            self.settings,
            **{
                "transactional.id": transactional_id,
                "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                "compression.type": "lz4",
                # What librdkafka retries by itself waits retry.backoff.ms first; its
                # default 100 ms would add 100 ms to any batch with a retried request.
                "retry.backoff.ms": 1,
                "retry.backoff.max.ms": 20,
                # Checked before every commit (see route_batch); only failures matter.
                "on_delivery": self._on_delivery,
                "delivery.report.only.error": True,
            },
        ))

    @property
    def producer(self) -> Producer:
        """The producer whose turn it is: the one of the open transaction, if any."""
        return self.producers[self._turn]

    def start(self) -> None:
        self.topics.ensure([self.raw, self.invalid])
        # Each id's init fences whatever a predecessor (a crashed or zombie router of
        # the same id) left open under it.
        for producer in self.producers:
            producer.init_transactions(30)
        self.consumer.subscribe([self.raw])

    def healthy(self) -> bool:
        return time.monotonic() - self.last_progress < 60

    def run(self, stopping: threading.Event) -> None:
        if not self.catalog.wait_loaded(stopping):
            return
        self.start()
        log.info("router started", extra={"router_id": self.router_id})
        try:
            while not stopping.is_set():
                messages = self._next_batch()
                self.last_progress = time.monotonic()
                if messages:
                    self.route_batch(messages)
                self._report_lag()
        finally:
            with contextlib.suppress(KafkaException, RuntimeError):
                self.consumer.close()
            log.info("router stopped")

    def _next_batch(self) -> list[Message]:
        """Wait for one event, then take what has arrived with it.

        ``consume(n, timeout)`` waits the whole timeout unless ``n`` arrive, which would
        add the timeout to every event's latency at low rates. Under load the batches
        still grow large: events pile up while the previous transaction commits.
        """
        first = self.consumer.consume(1, IDLE_POLL_SECONDS)
        if not first:
            return first
        return first + self.consumer.consume(BATCH_MESSAGES - 1, 0)

    def _new_events(self, messages: list[Message]) -> list[Message]:
        """The events of `messages` to route: of a partition assigned here now, and past
        what was routed of it already (within the batch too). Rebalances are served
        within consume(), so the assignment cannot change again before the commit."""
        events = [m for m in messages if not is_notice(m)]
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        seen = dict(self._routed)
        fresh = []
        for message in events:
            key = (message.topic(), message.partition())
            if key in assigned and message.offset() > seen.get(key, -1):
                seen[key] = message.offset()
                fresh.append(message)
        if len(fresh) < len(events):
            log.info("events of a rebalance left out: another router's, or fetched again",
                     extra={"events": len(events) - len(fresh)})
        return fresh

    def route_batch(self, messages: list[Message]) -> None:
        started = time.perf_counter()
        live = self._new_events(messages)
        if not live:
            return
        routings = [self._routing_of(message) for message in live]
        # Topics are made ready before the transaction begins: the first message to a
        # topic created inside the transaction was seen missing from the committed
        # transaction, with no error from the client or the broker.
        self.topics.ensure({topic for routing in routings for topic in routing.topics})
        try:
            self.producer.begin_transaction()
            for message, routing in zip(live, routings, strict=True):
                for topic in routing.topics:
                    self._produce(topic, message, routing.headers)
            self._confirm_deliveries()
            self.producer.send_offsets_to_transaction(
                _next_offsets(live), self.consumer.consumer_group_metadata(), 10
            )
            self.producer.commit_transaction(10)
        except KafkaException as exc:
            self._give_up(exc.args[0])
        # A later transaction's offsets are written after this one's, so they win
        # whichever of the two gets its markers first: offsets never go back.
        self._turn = (self._turn + 1) % len(self.producers)
        for message in live:  # in order per partition: the last one is the highest
            self._routed[(message.topic(), message.partition())] = message.offset()
        self._account(live, routings)
        metrics.ROUTER_BATCHES.observe(time.perf_counter() - started)

    def _routing_of(self, message: Message) -> Routing:
        headers = message.headers() or []
        app_id, reason, event = _decode(message.value(), headers)
        if reason is not None:
            return Routing(app_id, [self.invalid], [*headers, ("reason", reason.encode())],
                           invalid_reason=reason)
        destinations = select_destinations(event, self.catalog.for_app(app_id))
        prefix = self.settings.topic_prefix
        return Routing(app_id, [destination_topic(prefix, d.id) for d in destinations],
                       headers, destination_ids=[d.id for d in destinations])

    def _account(self, messages: list[Message], routings: list[Routing]) -> None:
        """Metrics and the recent-events stream, once the batch is committed."""
        routed: Counter[int] = Counter()
        invalid: Counter[str] = Counter()
        recent: list[tuple[int, bytes]] = []
        for message, routing in zip(messages, routings, strict=True):
            if routing.invalid_reason is not None:
                invalid[routing.invalid_reason] += 1
                continue
            routed.update(routing.destination_ids)
            recent.append((routing.app_id, message.value()))
        for destination_id, count in routed.items():
            metrics.ROUTED.labels(str(destination_id)).inc(count)
        for reason, count in invalid.items():
            metrics.INVALID.labels(reason).inc(count)
        if recent:
            self.recent.add(recent)

    def _produce(self, topic: str, message: Message,
                 headers: list[tuple[str, bytes]]) -> None:
        # Same key (same partitioner), and the time the Event API accepted the event,
        # so workers can measure delivery latency from there.
        _kind, accepted_ms = message.timestamp()
        while True:
            try:
                self.producer.produce(topic, message.value(), message.key(), headers=headers,
                                      timestamp=max(0, accepted_ms))
                return
            except BufferError:
                self.producer.poll(0.05)  # local queue full: let deliveries drain

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._failed_deliveries.append(error)

    def _confirm_deliveries(self) -> None:
        """Wait until the broker holds every message of the open transaction.

        commit_transaction flushes too; checking every delivery report ourselves means
        a message the client gave up on always aborts the transaction, even in client
        versions that committed without it (librdkafka has had such bugs).
        """
        remaining = self.producer.flush(10)
        failures, self._failed_deliveries = self._failed_deliveries, []
        if remaining:
            raise KafkaException(KafkaError(
                KafkaError._TIMED_OUT, f"{remaining} routed events not acknowledged in time"))
        if failures:
            raise KafkaException(failures[0])

    def _give_up(self, error: KafkaError) -> NoReturn:
        """Abort the open transaction and hand over to run_router, which starts again
        with new clients from the committed offsets. Nothing of the aborted
        transaction is visible to read_committed consumers, so nothing is routed twice;
        and new clients leave no doubt about the group or transaction state after an
        outage (a stale group generation, a fenced static member)."""
        log.warning("routing transaction failed; starting over from the committed offsets",
                    extra={"error": error.str()})
        with contextlib.suppress(KafkaException):
            self.producer.abort_transaction(10)
        raise KafkaException(error)

    def _report_lag(self) -> None:
        now = time.monotonic()
        if now - self._lag_checked < 5:
            return
        self._lag_checked = now
        lag = 0
        try:
            for tp in self.consumer.position(self.consumer.assignment()):
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset >= 0 and high >= 0:
                    lag += max(0, high - tp.offset)
        except KafkaException:
            return
        metrics.CONSUMER_LAG.labels("router").set(lag)


def router_id_from_env(environ: Mapping[str, str]) -> str:
    """CLICKSTREAM_ROUTER_ID, else one per replica of the platform's stateful router
    (REPLICA_INDEX), else the host name (stable only where hosts are)."""
    if environ.get("CLICKSTREAM_ROUTER_ID"):
        return environ["CLICKSTREAM_ROUTER_ID"]
    if environ.get("REPLICA_INDEX"):
        return f"router-{environ['REPLICA_INDEX']}"
    return socket.gethostname()


def _decode(value: bytes | None,
            headers: list[tuple[str, bytes]]) -> tuple[int, str | None, dict[str, Any]]:
    """``(app id, reason it cannot be routed or None, event)``."""
    app_header = next((v for k, v in headers if k == "app_id"), None)
    if app_header is None:
        return 0, "missing app_id header", {}
    try:
        app_id = int(app_header)
    except ValueError:
        return 0, "bad app_id header", {}
    if not value:
        return app_id, "empty message", {}
    try:
        event = json.loads(value)
    except (ValueError, RecursionError):  # nested too deep to parse: not JSON we can use
        return app_id, "not JSON", {}
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return app_id, "not an event object", {}
    return app_id, None, event


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    highest: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic(), m.partition())
        highest[key] = max(highest.get(key, -1), m.offset())
    return [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]


def run_router(settings: Settings) -> None:
    """Route until SIGTERM; start over with new Kafka clients after a fatal error."""
    stopping = stop_event()
    catalog = DestinationCatalog(settings.postgres_dsn)
    current: list[Router] = []
    metrics.serve_metrics(settings.metrics_port,
                          lambda: bool(current) and current[-1].healthy())
    while not stopping.is_set():
        router = Router(settings, catalog=catalog)
        current[:] = [router]
        try:
            router.run(stopping)
        except (KafkaException, TimeoutError) as exc:
            # Kafka unreachable at start, a failed transaction, a fenced producer or
            # consumer: nothing was committed that should not have been, so begin again.
            log.error("router restarting", extra={"error": str(exc)})
            stopping.wait(2.0)
