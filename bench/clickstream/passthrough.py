"""Reference for the router: copy raw -> one topic with no parsing, no routing and no
transaction, with the same client settings. What is left is Python + librdkafka."""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import Consumer, Producer


def main(bootstrap: str, source: str, target: str, total: int) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{source}.passthrough",
                         "auto.offset.reset": "earliest", "enable.auto.commit": True,
                         "queued.min.messages": 20000})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "compression.type": "lz4", "partitioner": "murmur2_random"})
    consumer.subscribe([source])
    copied = 0
    started = None
    while copied < total:
        for message in consumer.consume(5000, 0.05):
            if message.error():
                continue
            if started is None:  # time the copy, not the group join
                started = (time.monotonic(), time.process_time())
            while True:
                try:
                    producer.produce(target, message.value(), message.key(),
                                     headers=message.headers())
                    break
                except BufferError:
                    producer.poll(0.05)
            copied += 1
        producer.poll(0)
    producer.flush(30)
    elapsed = time.monotonic() - started[0]
    cpu = time.process_time() - started[1]
    consumer.close()
    print(json.dumps({"events": copied, "events_per_s": round(copied / elapsed),
                      "cpu_seconds": round(cpu, 2),
                      "events_per_cpu_second": round(copied / cpu)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
