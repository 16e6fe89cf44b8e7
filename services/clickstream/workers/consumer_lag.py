"""The worker's lag per destination: events in its topics not yet delivered (from the
first one queued, or the consumer's position), for the clickstream_consumer_lag gauge."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaException

from clickstream import metrics
from clickstream.topics import destination_id_of
from clickstream.workers.partition_work import PartitionWork


def report_lag(consumer: Consumer, work: dict[tuple[str, int], PartitionWork],
               prefix: str) -> None:
    lag: dict[int, int] = {}
    try:
        assignment = consumer.assignment()
        positions = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(assignment)}
        for tp in assignment:
            key = (tp.topic, tp.partition)
            one = work.get(key)
            position = one.queue[0].offset() if one and one.queue else positions.get(key)
            _low, high = consumer.get_watermark_offsets(tp, cached=True)
            destination_id = destination_id_of(prefix, tp.topic)
            if position is not None and position >= 0 and high >= 0:
                lag[destination_id] = lag.get(destination_id, 0) + max(0, high - position)
            else:
                lag.setdefault(destination_id, 0)
    except KafkaException:
        return  # the next report tries again
    for destination_id, value in lag.items():
        metrics.CONSUMER_LAG.labels(str(destination_id)).set(value)
