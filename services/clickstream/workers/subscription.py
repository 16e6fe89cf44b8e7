"""Which destination topics a worker consumes: those of the enabled destinations of its
kind, batch-loaded ones aside, followed as the catalog changes (created first, so that
subscribing never waits for a topic), with the worker's revocation handler on each
change of assignment."""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from clickstream.catalog import DestinationCatalog
from clickstream.destination_settings import loaded_in_batches
from clickstream.topics import TopicCreator, destination_topic

log = logging.getLogger(__name__)

Revoked = Callable[[Consumer, list[TopicPartition]], None]


class Subscription:
    def __init__(self, consumer: Consumer, catalog: DestinationCatalog, topics: TopicCreator,
                 prefix: str, kind: str, on_revoke: Revoked) -> None:
        self.consumer = consumer
        self.catalog = catalog
        self.topics = topics
        self.prefix = prefix
        self.kind = kind
        self.on_revoke = on_revoke
        self.subscribed: list[str] | None = None
        self._catalog_version = -1

    def follow_catalog(self) -> None:
        """Subscribe anew when the enabled destinations changed since the last call."""
        destinations = self.catalog.enabled()
        if self.catalog.version == self._catalog_version:
            return
        self._catalog_version = self.catalog.version
        # A batch-loaded destination's events stay in its topic for the batch load.
        topics = sorted(destination_topic(self.prefix, d.id) for d in destinations
                        if not loaded_in_batches(d.kind, d.settings))
        if topics == self.subscribed:
            return
        if topics:
            try:
                self.topics.ensure(topics)
            except (KafkaException, TimeoutError) as exc:
                log.warning("cannot create destination topics yet", extra={"error": str(exc)})
                self._catalog_version = -1  # try again on the next round
                return
            self.consumer.subscribe(topics, on_revoke=self.on_revoke, on_lost=self.on_revoke)
        else:
            self.consumer.unsubscribe()
        self.subscribed = topics
        log.info("subscribed", extra={"kind": self.kind, "topics": topics})
