"""One partition of a destination topic, as a worker works through it: the events
fetched and not yet delivered (in order), the batch in flight, its retries, whether
fetching is paused; and the flow control over all of them."""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from clickstream.retry import RetryState

log = logging.getLogger(__name__)

# A partition stops being fetched above this many queued events, and resumes below half.
QUEUE_HIGH = 5000


@dataclass
class PartitionWork:
    destination_id: int
    queue: deque[Message] = field(default_factory=deque)
    inflight: Future[None] | None = None
    inflight_count: int = 0
    retry: RetryState = field(default_factory=RetryState)
    paused: bool = False


def control_flow(consumer: Consumer, work: dict[tuple[str, int], PartitionWork]) -> None:
    """Pause fetching the partitions whose queue is full, resume those drained to half:
    a destination that is slow or down does not fill the worker's memory."""
    pause, resume = [], []
    for (topic, partition), one in work.items():
        if not one.paused and len(one.queue) >= QUEUE_HIGH:
            one.paused = True
            pause.append(TopicPartition(topic, partition))
        elif one.paused and len(one.queue) < QUEUE_HIGH // 2:
            one.paused = False
            resume.append(TopicPartition(topic, partition))
    try:
        if pause:
            consumer.pause(pause)
        if resume:
            consumer.resume(resume)
    except KafkaException as exc:  # revoked meanwhile
        log.info("pause/resume skipped", extra={"error": str(exc)})
