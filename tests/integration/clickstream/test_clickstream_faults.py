"""Faults on the real path: the router killed mid-stream, Kafka or Postgres stopped under
load."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

from tests.infra.http_sink import HttpSink
from tests.integration.clickstream.load import Load
from tests.integration.clickstream.pipeline import Pipeline


def _message_ids(messages: list) -> Counter[str]:
    return Counter(json.loads(m.value())["messageId"] for m in messages)


def _raw_positions(pipeline: Pipeline, ids: set[str]) -> list[tuple[int, int]]:
    """(partition, offset) in the raw topic of the given events: where a loss began."""
    raw = pipeline.read_topic(f"{pipeline.prefix}.raw", timeout=20)
    return sorted((m.partition(), m.offset()) for m in raw
                  if json.loads(m.value())["messageId"] in ids)


def test_router_sigkilled_mid_stream_routes_every_event_exactly_once(
        pipeline: Pipeline) -> None:
    app_id, key = pipeline.create_app()
    everything = pipeline.create_destination(app_id, "All", "webhook",
                                             {"url": "http://127.0.0.1:9/"})
    tracks_only = pipeline.create_destination(
        app_id, "Tracks", "webhook", {"url": "http://127.0.0.1:9/"}, filters={"types": ["track"]})
    pipeline.event_api(workers=2)
    router = pipeline.router()

    load = Load(pipeline.api_url, key, threads=4, batch=20, pause=0.005).start()
    for _ in range(3):
        time.sleep(3)
        router.signal(signal.SIGKILL)
        router.popen.wait(10)
        router.start()  # same router id, as an orchestrator restarts a replica
    time.sleep(3)
    load.stop()

    assert set(load.statuses) == {200}, load.statuses
    accepted = load.accepted
    assert len(accepted) > 2000
    for destination in (everything, tracks_only):
        routed = _message_ids(pipeline.read_topic(
            f"{pipeline.prefix}.dest.{destination.id}", expect=len(accepted), timeout=60))
        duplicates = {m: n for m, n in routed.items() if n > 1}
        assert duplicates == {}
        missing = accepted - set(routed)
        assert not missing, f"not routed, at raw (partition, offset): " \
                            f"{_raw_positions(pipeline, missing)}"
        assert set(routed) == accepted


def test_a_router_added_then_one_killed_routes_every_event_exactly_once(
        pipeline: Pipeline) -> None:
    """Two rebalances under load: a second router joins (the partitions are shared out
    again), then the first is SIGKILLed (its partitions go to the second once its
    session times out)."""
    app_id, key = pipeline.create_app()
    everything = pipeline.create_destination(app_id, "All", "webhook",
                                             {"url": "http://127.0.0.1:9/"})
    pipeline.event_api(workers=2)
    first = pipeline.router("router-a")
    load = Load(pipeline.api_url, key, threads=4, batch=20, pause=0.005).start()
    time.sleep(3)
    second = pipeline.router("router-b")
    deadline = time.monotonic() + 30
    while "router started" not in second.log_tail(100):
        assert time.monotonic() < deadline, second.log_tail()
        time.sleep(0.2)
    time.sleep(3)
    first.signal(signal.SIGKILL)
    first.popen.wait(10)
    time.sleep(15)  # beyond the killed router's session timeout (10 s)
    load.stop()

    assert set(load.statuses) == {200}, load.statuses
    accepted = load.accepted
    assert len(accepted) > 2000
    routed = _message_ids(pipeline.read_topic(
        f"{pipeline.prefix}.dest.{everything.id}", expect=len(accepted), timeout=90))
    assert {m: n for m, n in routed.items() if n > 1} == {}
    missing = accepted - set(routed)
    assert not missing, f"not routed, at raw (partition, offset): " \
                        f"{_raw_positions(pipeline, missing)}"


def test_a_worker_sigkilled_mid_delivery_loses_nothing(
        pipeline: Pipeline, webhook_sink: HttpSink) -> None:
    """Killed with batches in flight, twice: the restarted worker delivers again from
    its last committed offsets. Every accepted event arrives; those sent twice are the
    same events under the same messageId, which is how the receiver tells them apart."""
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook",
                                {"url": webhook_sink.url, "batch_size": 20})
    pipeline.event_api(workers=2)
    pipeline.router()
    worker = pipeline.worker("webhook")
    load = Load(pipeline.api_url, key, threads=4, batch=10, pause=0.01).start()
    for _ in range(2):
        before = len(webhook_sink.events())  # killed while delivering
        webhook_sink.wait_until(lambda seen=before: len(webhook_sink.events()) > seen + 300,
                                timeout=60)
        worker.signal(signal.SIGKILL)
        worker.popen.wait(10)
        worker.start()
    time.sleep(3)
    load.stop()

    # What the Event API refused (a 503 when Kafka is slow to acknowledge) is the
    # client's to send again; everything it accepted must arrive.
    assert set(load.statuses) <= {200, 503}, load.statuses
    assert len(load.accepted) > 1000
    webhook_sink.wait_until(
        lambda: load.accepted <= {e["messageId"] for e in webhook_sink.events()}, timeout=120)
    delivered = Counter(e["messageId"] for e in webhook_sink.events())
    assert load.accepted <= set(delivered)
    assert set(delivered) - load.accepted <= load.refused  # part of a refused batch
    assert max(delivered.values()) <= 3  # at most once more per kill
    by_id: dict[str, dict] = {}
    for event in webhook_sink.events():
        assert by_id.setdefault(event["messageId"], event) == event


def test_kafka_stopped_for_30s_every_200_is_delivered_and_refused_batches_sent_again_are(
        pipeline: Pipeline, webhook_sink: HttpSink, kafka) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook",
                                {"url": webhook_sink.url, "batch_size": 50})
    pipeline.event_api(workers=2)
    pipeline.router()
    pipeline.worker("webhook")

    load = Load(pipeline.api_url, key, threads=6, batch=5, pause=0.02).start()
    try:
        time.sleep(3)
        kafka.stop()
        time.sleep(30)
    finally:
        kafka.start()
    time.sleep(8)  # keep the load on while producers reconnect
    load.stop()

    assert set(load.statuses) <= {200, 503}, load.statuses
    assert load.statuses[503] > 0, "Kafka was down, yet nothing was refused"
    # What a refused client sees: why, and when to try again; then its retry succeeds.
    assert load.refusal is not None and load.refusal.headers["Retry-After"].isdigit()
    assert load.refusal.json()["code"] == "unavailable", load.refusal.text
    deadline = time.monotonic() + 120
    for events in load.refused_batches:  # as a client does: again, after Retry-After
        while (retried := pipeline.post("/v1/batch", {"batch": events}, key)).status_code == 503:
            assert time.monotonic() < deadline, retried.text
            time.sleep(min(5, int(retried.headers["Retry-After"])))
        assert retried.status_code == 200, retried.text
    retried_ids = {e["messageId"] for events in load.refused_batches for e in events}
    webhook_sink.wait_until(lambda: load.accepted | retried_ids <= {
        e["messageId"] for e in webhook_sink.events()}, timeout=120)
    delivered = {e["messageId"] for e in webhook_sink.events()}
    assert load.accepted - delivered == set()
    assert retried_ids - delivered == set()


def test_postgres_stopped_past_the_key_cache_known_keys_keep_working_and_all_arrives(
        pipeline: Pipeline, webhook_sink: HttpSink, postgres) -> None:
    """Longer than the write-key cache's lifetime (10 s here): the known key is served
    from the cache unchecked, an unknown one is 503 (not 401), and the router and worker,
    with their destinations cached, go on delivering."""
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook",
                                {"url": webhook_sink.url, "batch_size": 50})
    pipeline.event_api(workers=1,  # one process: its cache knows the key
                       CLICKSTREAM_WRITE_KEY_CACHE_SECONDS="10")
    pipeline.router()
    pipeline.worker("webhook")

    load = Load(pipeline.api_url, key, threads=4, batch=5, pause=0.05,
                max_seconds=300).start()
    try:
        webhook_sink.wait_until(lambda: len(webhook_sink.events()) >= 100, timeout=60)
        postgres.stop()
        outage_started = time.monotonic()
        unknown = pipeline.post("/v1/track", {"userId": "u", "event": "e"}, "not-a-key")
        assert unknown.status_code == 503, unknown.text
        assert unknown.json()["code"] == "unavailable"
        delivered_before = len(webhook_sink.events())
        webhook_sink.wait_until(lambda: len(webhook_sink.events()) > delivered_before + 100,
                                timeout=30)  # delivery goes on while Postgres is away
        time.sleep(max(0.0, 25 - (time.monotonic() - outage_started)))  # the outage
    finally:
        postgres.start()
    accepted_during = len(load.accepted)
    webhook_sink.wait_until(lambda: len(load.accepted) > accepted_during + 50, timeout=60)
    load.stop()

    assert set(load.statuses) == {200}, load.statuses
    webhook_sink.wait_until(
        lambda: load.accepted <= {e["messageId"] for e in webhook_sink.events()}, timeout=120)
    assert load.accepted - {e["messageId"] for e in webhook_sink.events()} == set()
