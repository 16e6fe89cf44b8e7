"""Kafka round trips: transactions seen by a read_committed consumer, and the broker's
stop, kill -9 and restart on the same data."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, Producer

from tests.infra.kafka import KafkaBroker


def consume(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            values.append(message.value())
    finally:
        consumer.close()
    return values


def test_transactional_produce_consume(kafka: KafkaBroker, kafka_topic_prefix: str) -> None:
    topic = kafka.create_topic(f"{kafka_topic_prefix}raw", partitions=1)
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "transactional.id": f"{topic}-tx"})
    producer.init_transactions(30)
    for values, commit in (([b"a", b"b"], True), ([b"aborted"], False), ([b"c"], True)):
        producer.begin_transaction()
        for value in values:
            producer.produce(topic, value)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)

    # One partition: committed records come in order, the aborted one must never show.
    assert consume(kafka.bootstrap, topic, 3) == [b"a", b"b", b"c"]


def produce_one(kafka: KafkaBroker, topic: str, value: bytes) -> None:
    producer = Producer(
        {"bootstrap.servers": kafka.bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    producer.produce(topic, value)
    assert producer.flush(30) == 0


def test_kill_stop_and_restart_keep_the_log(kafka: KafkaBroker, kafka_topic_prefix: str) -> None:
    topic = kafka.create_topic(f"{kafka_topic_prefix}durable")
    produce_one(kafka, topic, b"before kill")

    kafka.kill()
    assert not kafka.running
    kafka.start()
    produce_one(kafka, topic, b"after kill")

    kafka.stop()
    assert not kafka.running
    kafka.start()
    assert consume(kafka.bootstrap, topic, 2) == [b"before kill", b"after kill"]
