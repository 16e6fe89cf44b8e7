"""Router behaviour beyond the happy path: live destination changes, unroutable events,
the recent-events stream and the process's own metrics."""

from __future__ import annotations

import json
import time

import requests
from confluent_kafka import Producer

from clickstream.catalog import DestinationCatalog
from clickstream.config import Settings
from clickstream.recent_events import RecentEvents
from clickstream.router import TRANSACTION_TIMEOUT_MS, Router
from tests.integration.clickstream.pipeline import Pipeline


def _count(pipeline: Pipeline, topic: str, expect: int) -> int:
    return len(pipeline.read_topic(topic, expect=expect, timeout=15))


def test_destination_changes_apply_without_restart(pipeline: Pipeline) -> None:
    app_id, key = pipeline.create_app()
    pipeline.event_api()
    router = pipeline.router()
    event = {"userId": "u", "event": "Clicked"}
    assert pipeline.post("/v1/track", event, key).status_code == 200
    recent = RecentEvents(pipeline.redis_url, pipeline.prefix)
    deadline = time.monotonic() + 30
    while not recent.read(app_id):  # routed (to nowhere) before the destination exists
        assert time.monotonic() < deadline
        time.sleep(0.2)

    destination = pipeline.create_destination(app_id, "Hook", "webhook",
                                              {"url": "http://127.0.0.1:9/"})
    topic = f"{pipeline.prefix}.dest.{destination.id}"
    time.sleep(1)  # NOTIFY reaches the router's listener
    assert pipeline.post("/v1/track", event, key).status_code == 200
    # Opting out by name, as Segment's integrations map does.
    opted_out = {**event, "integrations": {"Hook": False}}
    assert pipeline.post("/v1/track", opted_out, key).status_code == 200
    assert _count(pipeline, topic, 1) == 1

    with pipeline.connect() as conn:
        conn.execute("UPDATE clickstream.destinations SET enabled = false")
    time.sleep(1)
    assert pipeline.post("/v1/track", event, key).status_code == 200
    time.sleep(2)
    assert _count(pipeline, topic, 1) == 1

    newest_first = recent.read(app_id)
    assert len(newest_first) == 4
    assert json.loads(newest_first[1])["integrations"] == {"Hook": False}

    port = router.env["METRICS_PORT"]
    assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert f'clickstream_events_routed_total{{destination="{destination.id}"}} 1.0' in text


def test_unroutable_events_go_to_the_invalid_topic_with_the_reason(pipeline: Pipeline) -> None:
    pipeline.router()
    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    raw = f"{pipeline.prefix}.raw"
    deadline = time.monotonic() + 30
    while raw not in producer.list_topics(timeout=5).topics:  # the router creates it
        assert time.monotonic() < deadline
        time.sleep(0.2)
    producer.produce(raw, b"not json", b"k", headers=[("app_id", b"1")])
    producer.produce(raw, b'{"type": "track"}', b"k")
    producer.produce(raw, b"[1]", b"k", headers=[("app_id", b"1")])
    # Nested beyond what Python's parser can follow (another producer wrote it).
    deep = b"[" * 100_000 + b"]" * 100_000
    producer.produce(raw, deep, b"k", headers=[("app_id", b"1")])
    producer.flush(10)

    invalid = pipeline.read_topic(f"{pipeline.prefix}.invalid", expect=4)
    reasons = sorted(dict(m.headers())["reason"].decode() for m in invalid)
    assert reasons == ["missing app_id header", "not JSON", "not JSON", "not an event object"]
    assert sorted(m.value() for m in invalid) == sorted(
        [b"not json", b'{"type": "track"}', b"[1]", deep])


def test_a_restarted_router_fences_the_transaction_any_of_its_producers_left_open(
        pipeline: Pipeline) -> None:
    """The router's producers take turns, one transaction each, so a router killed
    mid-batch can leave open the transaction of any of them. Its successor (same router
    id) fences them all as it starts: the open transaction is aborted at once, instead of
    holding back every read_committed consumer until it times out (15 s, then up to
    the broker's 10 s abort check)."""
    settings = Settings(kafka_bootstrap=pipeline.bootstrap, postgres_dsn=pipeline.dsn,
                        redis_url=pipeline.redis_url, topic_prefix=pipeline.prefix,
                        topic_partitions=1)  # both messages below in one partition
    topic = f"{pipeline.prefix}.fenced"
    killed = Router(settings, router_id=f"{pipeline.prefix}-router",
                    catalog=DestinationCatalog(pipeline.dsn, listen=False))
    assert len(killed.producers) > 1
    killed.topics.ensure([topic])
    left_open = killed.producers[-1]
    left_open.init_transactions(30)
    opened = time.monotonic()
    left_open.begin_transaction()
    left_open.produce(topic, b"never committed")
    assert left_open.flush(10) == 0  # in the partition, inside the open transaction

    successor = pipeline.router()  # the same router id, as a restarted replica has
    deadline = time.monotonic() + 30
    while "router started" not in successor.log_tail(100):
        assert time.monotonic() < deadline, successor.log_tail()
        time.sleep(0.2)
    after = Producer({"bootstrap.servers": pipeline.bootstrap})
    after.produce(topic, b"after the restart")
    assert after.flush(10) == 0
    # Only what was committed, and before the open transaction could have timed out:
    # only fencing can have ended it, so it no longer holds the last stable offset.
    timed_out = opened + TRANSACTION_TIMEOUT_MS / 1000
    values = [m.value() for m in pipeline.read_topic(
        topic, expect=1, timeout=max(0.0, timed_out - time.monotonic()))]
    assert values == [b"after the restart"]
    assert time.monotonic() < timed_out
