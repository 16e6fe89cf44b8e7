"""Webhook delivery when the receiver misbehaves: down, refusing, rate limiting."""

from __future__ import annotations

import subprocess
import sys
import time

from clickstream import storage
from tests.infra.http_sink import HttpSink
from tests.integration.clickstream.pipeline import Pipeline

PATIENT = {"max_attempts": 1000, "retry_window_seconds": 600, "initial_backoff_seconds": 0.2,
           "max_backoff_seconds": 2}


def _send(pipeline: Pipeline, key: str, users: int, per_user: int, start: int = 0) -> None:
    for seq in range(start, start + per_user):
        batch = [{"type": "track", "userId": f"user-{u}", "event": "Step",
                  "properties": {"seq": seq}} for u in range(users)]
        response = pipeline.post("/v1/batch", {"batch": batch}, key)
        assert response.status_code == 200, response.text


def _sequences(webhook_sink: HttpSink) -> dict[str, list[int]]:
    by_user: dict[str, list[int]] = {}
    for event in webhook_sink.events():
        by_user.setdefault(event["userId"], []).append(event["properties"]["seq"])
    return by_user


def test_receiver_down_for_a_minute_then_everything_arrives_in_order(
        pipeline: Pipeline, webhook_sink: HttpSink) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook",
                                {"url": webhook_sink.url, "batch_size": 5, **PATIENT})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("webhook")

    _send(pipeline, key, users=6, per_user=10)
    webhook_sink.wait_until(lambda: len(webhook_sink.events()) == 60)
    webhook_sink.stop()
    down_at = time.monotonic()
    for round_ in range(10):  # keep tracking while it is down
        _send(pipeline, key, users=6, per_user=5, start=10 + 5 * round_)
        time.sleep(2)
    time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
    webhook_sink.start()

    webhook_sink.wait_until(lambda: len(webhook_sink.events()) >= 360, timeout=60)
    time.sleep(1)
    sequences = _sequences(webhook_sink)
    assert sorted(sequences) == [f"user-{u}" for u in range(6)]
    for user, seqs in sequences.items():
        assert seqs == list(range(60)), f"{user} got {seqs}"


def test_refused_events_go_to_dead_letters_and_replay_delivers_them_once(
        pipeline: Pipeline, webhook_sink: HttpSink) -> None:
    app_id, key = pipeline.create_app()
    destination = pipeline.create_destination(app_id, "Hook", "webhook",
                                              {"url": webhook_sink.url, **PATIENT})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("webhook")

    webhook_sink.status = 400  # a client error: retrying cannot help
    _send(pipeline, key, users=3, per_user=4)
    dead = pipeline.read_topic(f"{pipeline.prefix}.dead.{destination.id}", expect=12)
    assert len(dead) == 12
    assert all(dict(m.headers())["error"].startswith(b"HTTP 400") for m in dead)
    assert webhook_sink.events() == []

    webhook_sink.status = 200
    replay = [sys.executable, "-m", "clickstream", "replay", "--destination",
              str(destination.id)]
    done = subprocess.run(replay, env=pipeline.env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "replayed 12 dead letter(s)" in done.stdout
    webhook_sink.wait_until(lambda: len(webhook_sink.events()) == 12)

    again = subprocess.run(replay, env=pipeline.env(), capture_output=True, text=True,
                           timeout=60)
    assert "replayed 0 dead letter(s)" in again.stdout
    time.sleep(2)
    assert len(webhook_sink.events()) == 12
    assert {k: sorted(v) for k, v in _sequences(webhook_sink).items()} == {
        f"user-{u}": [0, 1, 2, 3] for u in range(3)}
    with pipeline.connect() as conn:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            state = storage.get_delivery_state(conn, destination.id)
            if state["delivered"] == 12:
                break
            time.sleep(0.5)
    assert (state["dead_lettered"], state["replayed"], state["delivered"]) == (12, 12, 12)
    assert state["last_error"].startswith("HTTP 400")


def test_retry_after_is_honoured(pipeline: Pipeline, webhook_sink: HttpSink) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook", {"url": webhook_sink.url, **PATIENT})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("webhook")

    webhook_sink.script = [(429, {"Retry-After": "3"}), (503, {"Retry-After": "1"})]
    _send(pipeline, key, users=1, per_user=1)
    webhook_sink.wait_until(lambda: len(webhook_sink.received) == 1)
    first, second = webhook_sink.refusals
    assert second - first >= 3.0
    assert webhook_sink.received[0].at - second >= 1.0
