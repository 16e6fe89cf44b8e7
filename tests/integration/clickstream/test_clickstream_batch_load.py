"""Warehouse loads in batches (clickstream.batch_load) on the real Kafka and Postgres: a
window loads the events the router wrote in it, once however often it runs; consecutive
windows meet without gap; refused events go to dead letters; a window of the wrong shape
or a destination that streams is refused with what is wrong."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from confluent_kafka import Producer

from clickstream.batch_load import batch_destinations, load_window
from clickstream.config import Settings
from clickstream.topics import destination_topic
from tests.integration.clickstream.pipeline import Pipeline

START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)


def settings_of(pipeline: Pipeline) -> Settings:
    return Settings(kafka_bootstrap=pipeline.bootstrap, postgres_dsn=pipeline.dsn,
                    topic_prefix=pipeline.prefix, topic_partitions=4)


def route(pipeline: Pipeline, destination_id: int, events: list[tuple[int, dict]]) -> None:
    """Write (seconds after START, event) to the destination's topic as the router does:
    in a transaction, keyed by user."""
    producer = Producer({"bootstrap.servers": pipeline.bootstrap,
                         "transactional.id": f"test-router-{destination_id}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    for seconds, event in events:
        producer.produce(destination_topic(pipeline.prefix, destination_id),
                         json.dumps(event).encode(), event["userId"].encode(),
                         timestamp=int((START + timedelta(seconds=seconds)).timestamp() * 1000))
    producer.commit_transaction(30)


def order(message_id: str, user: str = "u-1", quantity: int = 1) -> dict:
    return {"type": "track", "event": "Order Completed", "userId": user,
            "messageId": message_id, "properties": {"quantity": quantity}}


def loaded(pipeline: Pipeline) -> list[str]:
    with psycopg.connect(pipeline.dsn) as conn:
        return [i for (i,) in conn.execute("SELECT id FROM analytics.tracks ORDER BY id")]


def test_a_window_loads_once_and_the_next_window_takes_up_where_it_ended(pipeline: Pipeline):
    app_id, _key = pipeline.create_app()
    destination = pipeline.create_destination(app_id, "Warehouse", "warehouse", {
        "dsn": pipeline.dsn, "schema": "analytics", "load": "batch", "batch_size": 2})
    streaming = pipeline.create_destination(app_id, "Live", "warehouse", {
        "dsn": pipeline.dsn, "schema": "live"})
    settings = settings_of(pipeline)
    assert [d.id for d in batch_destinations(settings)] == [destination.id]
    with psycopg.connect(pipeline.dsn) as conn:  # as an analyst made it: a small column
        conn.execute("CREATE SCHEMA analytics")
        conn.execute("CREATE TABLE analytics.order_completed (id VARCHAR(512) PRIMARY KEY,"
                     " quantity SMALLINT)")
    # m-2 twice (a client that sent it again); m-4 in the next window with one the
    # warehouse refuses (too large for the analyst's column).
    route(pipeline, destination.id, [
        (1, order("m-1")), (2, order("m-2", "u-2")), (3, order("m-3", "u-3")),
        (5, order("m-2", "u-2")), (15, order("m-4")), (16, order("m-5", quantity=100_000))])
    first = (START, START + timedelta(seconds=10))

    once = load_window(settings, destination.id, *first)
    assert (once.read, once.refused) == (4, 0)
    assert loaded(pipeline) == ["m-1", "m-2", "m-3"]
    again = load_window(settings, destination.id, *first)
    assert again.read == 4 and loaded(pipeline) == ["m-1", "m-2", "m-3"]

    second = load_window(settings, destination.id, first[1], first[1] + timedelta(minutes=1))
    assert (second.read, second.refused) == (2, 1)
    assert loaded(pipeline) == ["m-1", "m-2", "m-3", "m-4"]
    dead = pipeline.read_topic(f"{pipeline.prefix}.dead.{destination.id}", expect=1)
    assert len(dead) == 1 and b'"m-5"' in dead[0].value()
    assert b"out of range" in dict(dead[0].headers())["error"]

    empty = load_window(settings, destination.id, START - timedelta(hours=1), START)
    assert empty.read == 0

    with pytest.raises(ValueError, match=r"ends .* before it starts"):
        load_window(settings, destination.id, first[1], first[0])
    with pytest.raises(ValueError, match="ends in the future"):
        load_window(settings, destination.id, START, datetime.now(timezone.utc)
                    + timedelta(minutes=1))
    with pytest.raises(ValueError, match=r"destination \d+ \(Live\) is not a warehouse "
                                         r"loaded in batches"):
        load_window(settings, streaming.id, *first)
