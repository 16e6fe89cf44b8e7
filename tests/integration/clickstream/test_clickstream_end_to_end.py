"""HTTP event in, webhook request and warehouse rows out, on real Kafka and Postgres."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime

import psycopg
import requests

from tests.infra.http_sink import HttpSink
from tests.integration.clickstream.pipeline import Pipeline


def test_event_reaches_webhook_signed_with_server_fields(pipeline: Pipeline,
                                                         webhook_sink: HttpSink) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook", {"url": webhook_sink.url},
                                secret="s3cret")
    pipeline.event_api()
    pipeline.router()
    worker = pipeline.worker("webhook")

    sent = {"userId": "u-1", "event": "Order Completed",
            "properties": {"revenue": 12.5, "items": ["a", "b"]},
            "timestamp": "2024-05-01T10:00:00Z", "sentAt": "2024-05-01T10:00:10Z",
            "context": {"library": {"name": "test"}}}
    response = pipeline.post("/v1/track", sent, key)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}

    webhook_sink.wait_until(lambda: len(webhook_sink.received) == 1)
    request = webhook_sink.received[0]
    event = request.json()
    assert {k: event[k] for k in ("userId", "event", "properties", "sentAt")} == {
        k: sent[k] for k in ("userId", "event", "properties", "sentAt")}
    assert event["type"] == "track"
    assert event["context"]["library"] == {"name": "test"}
    assert event["context"]["ip"] == "127.0.0.1"
    assert event["messageId"]
    assert event["originalTimestamp"] == "2024-05-01T10:00:00Z"
    # The client's clock ran 10 s ahead of the event: timestamp = receivedAt - 10 s.
    received_at = datetime.fromisoformat(event["receivedAt"])
    corrected = datetime.fromisoformat(event["timestamp"])
    assert abs((received_at - corrected).total_seconds() - 10) < 0.002
    assert abs(time.time() - received_at.timestamp()) < 30
    expected = "sha256=" + hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Clickstream-Signature"] == expected

    metrics_url = f"http://127.0.0.1:{worker.env['METRICS_PORT']}/metrics"
    deadline = time.monotonic() + 15
    delivered = 'clickstream_events_delivered_total{destination="1",kind="webhook"} 1.0'
    # The sink answers before the worker counts; the lag gauge is refreshed every few seconds.
    while True:
        text = requests.get(metrics_url, timeout=5).text
        done = delivered in text and 'clickstream_consumer_lag{destination="1"} 0.0' in text
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert delivered in text
    assert 'clickstream_consumer_lag{destination="1"} 0.0' in text


def _wait_for_rows(dsn: str, query: str, expected: int, timeout: float = 30) -> list[tuple]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(dsn) as conn:
                rows = conn.execute(query).fetchall()
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
            rows = []
        if len(rows) >= expected or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def test_events_become_warehouse_rows_once(pipeline: Pipeline) -> None:
    app_id, key = pipeline.create_app()
    # The warehouse is another database on the same server, as a user would point it.
    pipeline.create_destination(app_id, "Warehouse", "warehouse",
                                {"dsn": pipeline.dsn, "schema": "analytics"})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("warehouse")

    batch = {"batch": [
        {"type": "track", "userId": "u-1", "event": "Order Completed", "messageId": "m-1",
         "properties": {"revenue": 10, "currency": "EUR"}},
        {"type": "identify", "userId": "u-1", "messageId": "m-2",
         "traits": {"email": "a@example.com", "plan": {"name": "pro"}}},
        {"type": "page", "anonymousId": "anon-7", "messageId": "m-3", "name": "Home",
         "properties": {"path": "/"}},
    ], "sentAt": "2024-05-01T10:00:00Z"}
    assert pipeline.post("/v1/batch", batch, key).status_code == 200
    rows = _wait_for_rows(pipeline.dsn, "SELECT id FROM analytics.pages", 1)
    assert rows == [("m-3",)]

    # A new property appears; m-1 arrives again (a client retry) and must not duplicate.
    later = {"batch": [
        {"type": "track", "userId": "u-1", "event": "Order Completed", "messageId": "m-4",
         "properties": {"revenue": 20.5, "coupon": "SPRING"}},
        {"type": "track", "userId": "u-1", "event": "Order Completed", "messageId": "m-1",
         "properties": {"revenue": 10, "currency": "EUR"}},
    ]}
    assert pipeline.post("/v1/batch", later, key).status_code == 200
    _wait_for_rows(pipeline.dsn, "SELECT id FROM analytics.order_completed WHERE id = 'm-4'", 1)
    rows = _wait_for_rows(pipeline.dsn, "SELECT id, revenue, currency, coupon, event,"
                          " event_text, context_ip, user_id, received_at IS NOT NULL"
                          " FROM analytics.order_completed ORDER BY id", 2)
    assert rows == [
        ("m-1", 10.0, "EUR", None, "order_completed", "Order Completed", "127.0.0.1", "u-1", True),
        ("m-4", 20.5, None, "SPRING", "order_completed", "Order Completed", "127.0.0.1", "u-1",
         True),
    ]
    with psycopg.connect(pipeline.dsn) as conn:
        tracks = conn.execute("SELECT id, event FROM analytics.tracks ORDER BY id").fetchall()
        identifies = conn.execute(
            "SELECT id, user_id, email, plan_name FROM analytics.identifies").fetchall()
        column_types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'analytics' AND table_name = 'order_completed'").fetchall())
    assert tracks == [("m-1", "order_completed"), ("m-4", "order_completed")]
    assert identifies == [("m-2", "u-1", "a@example.com", "pro")]
    assert column_types["revenue"] == "double precision"
    assert column_types["timestamp"] == "timestamp without time zone"


def test_identify_builds_redis_profile_and_counters(pipeline: Pipeline) -> None:
    import redis

    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Profiles", "redis", {"key_prefix": "profiles"})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("redis")

    events = [
        {"type": "identify", "userId": "u-9", "messageId": "i-1",
         "traits": {"name": "Ada", "age": 36}},
        {"type": "track", "userId": "u-9", "event": "Clicked", "messageId": "t-1"},
        {"type": "track", "userId": "u-9", "event": "Clicked", "messageId": "t-2"},
        {"type": "track", "userId": "u-9", "event": "Clicked", "messageId": "t-2"},  # resent
    ]
    assert pipeline.post("/v1/batch", {"batch": events}, key).status_code == 200
    client = redis.Redis.from_url(pipeline.redis_url, decode_responses=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and client.hget(f"profiles:{app_id}:counts",
                                                      "Clicked") != "2":
        time.sleep(0.2)
    profile = client.hgetall(f"profiles:{app_id}:profile:u-9")
    assert {k: profile[k] for k in ("name", "age")} == {"name": '"Ada"', "age": "36"}
    assert client.hgetall(f"profiles:{app_id}:counts:u-9") == {"identify": "1", "Clicked": "2"}
