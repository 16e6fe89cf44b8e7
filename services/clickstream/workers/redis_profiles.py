"""Redis destinations: user profiles from ``identify`` traits and per-event counters.

Keys, under the destination's ``key_prefix`` and the app's id:

  <prefix>:<app>:profile:<user>  hash: traits (JSON-encoded values), last_seen
  <prefix>:<app>:counts:<user>   hash: event name (track) or type -> count, per user
  <prefix>:<app>:counts          hash: the same counters for the whole app

The user is ``userId``, else ``anonymousId``. Each event is applied by a Lua script
that first records its ``messageId``, so a redelivered event is counted once.
"""

from __future__ import annotations

import json
import threading

import redis

from clickstream.config import Settings
from clickstream.destination_settings import InvalidSettings, RedisSettings, parse_settings
from clickstream.retry import DeliveryError
from clickstream.storage import Destination
from clickstream.workers.sink import RoutedEvent

SEEN_TTL_SECONDS = 7 * 24 * 3600

# KEYS: seen, profile, user counts, app counts
# ARGV: seen ttl, counter field, last_seen, then trait name/value pairs
_APPLY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return 0
end
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('HINCRBY', KEYS[4], ARGV[2], 1)
if #ARGV > 3 then
  redis.call('HSET', KEYS[2], 'last_seen', ARGV[3], unpack(ARGV, 4))
end
return 1
"""


def counter_field(event: dict) -> str:
    return event["event"] if event["type"] == "track" else event["type"]


class RedisProfileSink:
    def __init__(self, settings: Settings) -> None:
        self._default_url = settings.redis_url
        self._clients: dict[str, redis.Redis] = {}
        self._lock = threading.Lock()

    def _client(self, url: str) -> redis.Redis:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = self._clients[url] = redis.Redis.from_url(
                    url, socket_timeout=5, socket_connect_timeout=5)
            return client

    def batch_size(self, destination: Destination) -> int:
        return 500

    def linger_seconds(self, destination: Destination) -> float:
        return 0.0

    def deliver(self, destination: Destination, events: list[RoutedEvent]) -> None:
        try:
            settings: RedisSettings = parse_settings("redis", destination.settings)
        except InvalidSettings as exc:
            raise DeliveryError(f"invalid settings: {exc}", retryable=False) from None
        client = self._client(settings.url or self._default_url)
        apply = client.register_script(_APPLY)
        base = f"{settings.key_prefix}:{destination.app_id}"
        try:
            pipe = client.pipeline(transaction=False)
            for routed in events:
                event = routed.event
                user = event.get("userId") or event.get("anonymousId")
                args: list[str] = [str(SEEN_TTL_SECONDS), counter_field(event),
                                   event.get("timestamp", "")]
                if event["type"] == "identify" and isinstance(event.get("traits"), dict):
                    for name, value in event["traits"].items():
                        args += [str(name), json.dumps(value)]
                apply(keys=[f"{base}:seen:{event['messageId']}", f"{base}:profile:{user}",
                            f"{base}:counts:{user}", f"{base}:counts"],
                      args=args, client=pipe)
            pipe.execute()
        except redis.RedisError as exc:
            raise DeliveryError(f"redis: {exc}") from None
