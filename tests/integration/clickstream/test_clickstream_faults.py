"""Faults on the real path: the router killed mid-stream, Kafka stopped under load."""

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


def test_kafka_stopped_for_30s_every_200_is_delivered_the_rest_refused_with_503(
        pipeline: Pipeline, webhook_sink: HttpSink, kafka) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook",
                                {"url": webhook_sink.url, "batch_size": 50})
    pipeline.event_api(workers=2, threads=16)
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
    webhook_sink.wait_until(
        lambda: load.accepted <= {e["messageId"] for e in webhook_sink.events()}, timeout=120)
    delivered = {e["messageId"] for e in webhook_sink.events()}
    assert load.accepted - delivered == set()
