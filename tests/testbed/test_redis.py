"""Redis round trips: pub/sub, and a stop/start seen by the client."""

from __future__ import annotations

import time

import pytest
import redis

from tests.infra.redis_server import RedisServer


def test_pub_sub(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0
        subscriber = client.pubsub()
        subscriber.subscribe("profiles")
        assert subscriber.get_message(timeout=5)["type"] == "subscribe"
        assert client.publish("profiles", "user-7 updated") == 1
        deadline = time.monotonic() + 5
        message = None
        while message is None and time.monotonic() < deadline:
            message = subscriber.get_message(ignore_subscribe_messages=True, timeout=1)
        subscriber.close()
    assert message is not None
    assert (message["channel"], message["data"]) == (b"profiles", b"user-7 updated")


def test_stop_and_start(redis_server: RedisServer, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    client.set("k", "v")
    redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        client.get("k")
    redis_server.start()
    # No persistence: a restarted Redis is empty, and the client reconnects by itself.
    assert client.get("k") is None
    client.set("k", "again")
    assert client.get("k") == b"again"
    client.close()
