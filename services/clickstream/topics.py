"""Kafka topic names and topic creation.

raw        every accepted event, keyed by user, from the Event API
dest.<id>  events routed to one destination (exactly once, by the router)
dead.<id>  events a destination's worker gave up on, with the error
invalid    events the router could not route, with the reason
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)


#: What a dead letter carries besides the event's own headers: why, after how many
#: attempts, when (ms since the epoch). A replay leaves them out.
DEAD_LETTER_HEADERS = ("error", "attempts", "failed_at")


def raw_topic(prefix: str) -> str:
    return f"{prefix}.raw"


def invalid_topic(prefix: str) -> str:
    return f"{prefix}.invalid"


def destination_topic(prefix: str, destination_id: int) -> str:
    return f"{prefix}.dest.{destination_id}"


def dead_letter_topic(prefix: str, destination_id: int) -> str:
    return f"{prefix}.dead.{destination_id}"


def destination_id_of(prefix: str, topic: str) -> int:
    """The destination id in a ``dest.<id>`` or ``dead.<id>`` topic name."""
    return int(topic.removeprefix(prefix + ".").split(".", 1)[1])


class TopicCreator:
    """Creates topics once per process; remembers which it already ensured."""

    def __init__(self, bootstrap: str, partitions: int) -> None:
        self._admin = AdminClient({"bootstrap.servers": bootstrap,
                                   "logger": logging.getLogger("kafka")})
        self._partitions = partitions
        self._known: set[str] = set()

    def ensure(self, names: Iterable[str], timeout: float = 10.0) -> None:
        missing = [name for name in names if name not in self._known]
        if not missing:
            return
        # replication_factor=-1 takes the broker's default, right for one broker or many.
        futures = self._admin.create_topics(
            [NewTopic(name, self._partitions, -1) for name in missing],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout)
                log.info("topic created", extra={"topic": name})
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        for name in missing:
            self._wait_until_led(name, timeout)
            self._known.add(name)

    def _wait_until_led(self, name: str, timeout: float) -> None:
        """Return once every partition of ``name`` has a leader.

        Kafka answers CreateTopics before the brokers have made the partitions ready;
        writing to them in that window is where a transaction lost a message.
        """
        deadline = time.monotonic() + timeout
        while True:
            topic = self._admin.list_topics(name, timeout=timeout).topics.get(name)
            if (topic is not None and topic.error is None and topic.partitions
                    and all(p.leader >= 0 and p.error is None
                            for p in topic.partitions.values())):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} has partitions without a leader")
            time.sleep(0.05)
