"""The Event API's producer: the settings every Kafka client here shares, plus its own
durability settings."""

from __future__ import annotations

from clickstream.config import Settings
from clickstream.kafka_clients import client_config
from clickstream.producer import DurableProducer


def test_the_event_api_producer_has_the_shared_client_settings() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:9")  # never reached: nothing is sent
    producer = DurableProducer(settings)
    try:
        config = producer._config
        shared = client_config(settings)
        assert {k: config.get(k) for k in shared} == shared
        assert config["socket.nagle.disable"] is True  # what it lacked
        assert config["enable.idempotence"] is True and config["acks"] == "all"
    finally:
        producer.close(0)
