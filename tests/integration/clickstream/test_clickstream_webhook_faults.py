"""Webhook delivery when the receiver misbehaves (down, refusing, rate limiting) and when
Kafka refuses the dead letters."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from clickstream import storage
from tests.infra.http_sink import HttpSink
from tests.integration.clickstream.pipeline import Pipeline, free_port

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


def test_dead_letters_kafka_refuses_are_kept_until_it_takes_them(
        pipeline: Pipeline, webhook_sink: HttpSink) -> None:
    """The dead-letter topic refuses the events (over its max.message.bytes): the worker
    must not count them stored, nor move past them; once the topic takes them, all are
    there."""
    app_id, key = pipeline.create_app()
    destination = pipeline.create_destination(app_id, "Hook", "webhook",
                                              {"url": webhook_sink.url, **PATIENT})
    dead_topic = f"{pipeline.prefix}.dead.{destination.id}"
    admin = AdminClient({"bootstrap.servers": pipeline.bootstrap})
    created = admin.create_topics([NewTopic(dead_topic, 1, 1,
                                            config={"max.message.bytes": "64"})])
    created[dead_topic].result(30)
    pipeline.event_api()
    pipeline.router()
    worker = pipeline.worker("webhook")

    webhook_sink.status = 400  # a client error: straight to dead letters
    _send(pipeline, key, users=3, per_user=1)
    deadline = time.monotonic() + 60
    while "dead letters not written" not in worker.log_tail(200):
        assert time.monotonic() < deadline, worker.log_tail(40)
        time.sleep(0.2)
    assert pipeline.read_topic(dead_topic, timeout=2) == []

    changed = admin.incremental_alter_configs([ConfigResource(
        ResourceType.TOPIC, dead_topic, incremental_configs=[ConfigEntry(
            "max.message.bytes", "1048576",
            incremental_operation=AlterConfigOpType.SET)])])
    changed[next(iter(changed))].result(30)
    dead = pipeline.read_topic(dead_topic, expect=3, timeout=60)
    assert sorted(m.key().decode() for m in dead) == ["user-0", "user-1", "user-2"]
    assert all(dict(m.headers())["error"].startswith(b"HTTP 400") for m in dead)


def test_a_retry_budget_spent_dead_letters_the_events_and_replay_delivers_them(
        pipeline: Pipeline, webhook_sink: HttpSink) -> None:
    """A receiver answering 503 (worth retrying) until the destination's budget of three
    attempts is spent: the events go to dead letters with the attempts made, and come
    back through a replay once the receiver is well."""
    app_id, key = pipeline.create_app()
    destination = pipeline.create_destination(app_id, "Hook", "webhook", {
        "url": webhook_sink.url, "max_attempts": 3, "initial_backoff_seconds": 0.1,
        "max_backoff_seconds": 0.2})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("webhook")

    webhook_sink.status = 503
    _send(pipeline, key, users=2, per_user=3)
    dead = pipeline.read_topic(f"{pipeline.prefix}.dead.{destination.id}", expect=6)
    assert len(dead) == 6
    assert {dict(m.headers())["attempts"] for m in dead} == {b"3"}
    assert all(dict(m.headers())["error"].startswith(b"HTTP 503") for m in dead)
    assert len(webhook_sink.refusals) >= 3  # the attempts reached the receiver

    webhook_sink.status = 200
    done = subprocess.run([sys.executable, "-m", "clickstream", "replay", "--destination",
                           str(destination.id)], env=pipeline.env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    webhook_sink.wait_until(lambda: len(webhook_sink.events()) == 6)
    assert {k: sorted(v) for k, v in _sequences(webhook_sink).items()} == {
        "user-0": [0, 1, 2], "user-1": [0, 1, 2]}


def test_credentials_in_a_webhook_url_reach_no_log_error_or_dead_letter(
        pipeline: Pipeline) -> None:
    app_id, key = pipeline.create_app()
    port = free_port()  # nothing listens: every attempt fails
    destination = pipeline.create_destination(app_id, "Hook", "webhook", {
        "url": f"http://hookuser:s3cret-pw@127.0.0.1:{port}/hook?token=t0ken-q",
        "headers": {"Authorization": "Bearer t0ken-h"}, "max_attempts": 1})
    pipeline.event_api()
    pipeline.router()
    worker = pipeline.worker("webhook")

    _send(pipeline, key, users=1, per_user=1)
    dead = pipeline.read_topic(f"{pipeline.prefix}.dead.{destination.id}", expect=1)
    error = dict(dead[0].headers())["error"].decode()
    assert error.startswith("ConnectionError posting to http://127.0.0.1:"), error
    with pipeline.connect() as conn:
        deadline = time.monotonic() + 15
        while not (state := storage.get_delivery_state(conn, destination.id))["last_error"]:
            assert time.monotonic() < deadline
            time.sleep(0.3)
    listed = subprocess.run([sys.executable, "-m", "clickstream", "admin", "destination",
                             "list", "--output", "json"], env=pipeline.env(),
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    for shown in (error, state["last_error"], worker.log_tail(500), listed.stdout):
        for secret in ("s3cret-pw", "t0ken-q", "t0ken-h"):
            assert secret not in shown, (secret, shown[:300])
    for shown in (error, state["last_error"], worker.log_tail(500)):
        assert "hookuser" not in shown, shown[:300]  # the listing shows who, masked


class DrippingReceiver:
    """Answers every request with a status line, then one byte of header every 0.3 s,
    for ever: each read is quick, the answer never ends."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self.stopping = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not self.stopping.wait(0.3):
                    conn.sendall(b"z")
            except OSError:
                return

    def stop(self) -> None:
        self.stopping.set()
        self.server.close()


def test_a_receiver_that_never_finishes_answering_times_out_as_a_whole(
        pipeline: Pipeline) -> None:
    receiver = DrippingReceiver()
    try:
        app_id, key = pipeline.create_app()
        destination = pipeline.create_destination(app_id, "Slow", "webhook", {
            "url": receiver.url, "timeout_seconds": 2, "max_attempts": 1})
        pipeline.event_api()
        pipeline.router()
        pipeline.worker("webhook")
        _send(pipeline, key, users=1, per_user=1)
        dead = pipeline.read_topic(f"{pipeline.prefix}.dead.{destination.id}", expect=1,
                                   timeout=60)
        assert len(dead) == 1
        assert dict(dead[0].headers())["error"] == (
            f"timed out after 2s posting to {receiver.url}".encode())
    finally:
        receiver.stop()
