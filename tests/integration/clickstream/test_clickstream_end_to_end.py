"""HTTP event in, webhook request and warehouse rows out, on real Kafka and Postgres."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import datetime

from tests.integration.clickstream.pipeline import Pipeline
from tests.integration.clickstream.receiver import Receiver


def test_event_reaches_webhook_signed_with_server_fields(pipeline: Pipeline,
                                                         receiver: Receiver) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook", {"url": receiver.url},
                                secret="s3cret")
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("webhook")

    sent = {"userId": "u-1", "event": "Order Completed",
            "properties": {"revenue": 12.5, "items": ["a", "b"]},
            "timestamp": "2024-05-01T10:00:00Z", "sentAt": "2024-05-01T10:00:10Z",
            "context": {"library": {"name": "test"}}}
    response = pipeline.post("/v1/track", sent, key)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}

    receiver.wait_until(lambda: len(receiver.requests) == 1)
    request = receiver.requests[0]
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
