"""What a Kafka consumer hands out besides events, told apart the same way by the router
and the workers."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException, Message

log = logging.getLogger(__name__)


def is_notice(message: Message) -> bool:
    """True for a message that is not an event: the end of a partition, or a transient
    error (logged). A fatal error raises: the consumer will never fetch again (say, fenced
    as a static member after a long broker outage), so its owner must start over with a
    new one, or exit for the orchestrator to restart it."""
    error = message.error()
    if error is None:
        return False
    if error.fatal():
        raise KafkaException(error)
    if error.code() != KafkaError._PARTITION_EOF:
        log.warning("consumer error", extra={"error": error.str()})
    return True
