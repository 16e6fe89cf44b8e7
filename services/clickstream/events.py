"""Validation and enrichment of Segment-spec events.

The Event API calls :func:`prepare_event` for every event it accepts. It checks what
the spec requires, drops the write key, and adds what the server knows: ``messageId``
when missing (derived from the request, so that a retry gets the same one),
``receivedAt``, ``context.ip``, and a ``timestamp`` corrected for the client's clock
skew. Like Segment, it keeps a batch's ``sentAt`` on each of its events and gives an
``identify`` that carries its traits only in ``context.traits`` those traits.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

TYPES = ("track", "identify", "page", "screen", "group", "alias")
# The one-letter Event API paths analytics.js posts to, beside the long ones.
SHORT_PATHS = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group",
               "a": "alias"}
_OBJECT_FIELDS = ("context", "integrations", "properties", "traits")
_TIME_FIELDS = ("timestamp", "sentAt", "originalTimestamp")
_ID_LIMIT = 512
# Namespace of the messageIds the server derives (a fixed random UUID, never change it:
# a retry after an upgrade must still get the ids of the first attempt).
_DERIVED_ID_NAMESPACE = uuid.UUID("5f3f6d0e-8c2a-4b7e-9a51-2f0c3d9e7b14")
# Transport fields a client may set anew on each attempt; not part of an event's identity.
_NOT_IDENTITY = ("sentAt", "writeKey")


class InvalidEvent(ValueError):
    """The event breaks the spec; the message says how, for the client."""


def parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidEvent(f"{name} must be an ISO-8601 string, not {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"{name} is not an ISO-8601 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        # A time without offset is taken as UTC, as Segment's libraries send it.
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        parsed.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidEvent(f"{name} is out of range: {value[:40]!r}") from None
    return parsed


@lru_cache(maxsize=256)  # a request's events share their receivedAt, often their timestamp
def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )


def _identifier(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidEvent(f"{name} must be a string, not {type(value).__name__}")
    value = str(value)
    if not value or len(value) > _ID_LIMIT:
        raise InvalidEvent(f"{name} must have 1 to {_ID_LIMIT} characters")
    event[name] = value
    return value


def validate(event: Any, event_type: str | None = None) -> dict[str, Any]:
    """Check one event in place and return it; raise :class:`InvalidEvent`.

    ``event_type`` is the type the endpoint implies (``/v1/track``); batch items
    carry their own ``type``.
    """
    if not isinstance(event, dict):
        raise InvalidEvent(f"an event must be a JSON object, not {type(event).__name__}")
    declared = event.get("type")
    if event_type is None:
        if declared not in TYPES:
            raise InvalidEvent(f"type must be one of {', '.join(TYPES)}, not "
                               f"{_short(declared)}")
        event_type = declared
    elif declared is not None and declared != event_type:
        raise InvalidEvent(f"type {_short(declared)} does not match the endpoint "
                           f"/v1/{event_type}")
    event["type"] = event_type

    user_id = _identifier(event, "userId")
    anonymous_id = _identifier(event, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise InvalidEvent("userId or anonymousId is required")
    message_id = event.get("messageId")
    if message_id is not None and (not isinstance(message_id, str) or not message_id
                                   or len(message_id) > _ID_LIMIT):
        raise InvalidEvent(f"messageId must be a string of 1 to {_ID_LIMIT} characters")
    for name in _OBJECT_FIELDS:
        if name in event and event[name] is not None and not isinstance(event[name], dict):
            raise InvalidEvent(f"{name} must be an object, not {type(event[name]).__name__}")

    _check_type_fields(event, event_type, user_id)
    return event


def _short(value: Any) -> str:
    """A client's value in an error message, cut: it may be a whole nested document."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_type_fields(event: dict[str, Any], event_type: str, user_id: str | None) -> None:
    if event_type == "track":
        name = event.get("event")
        if not isinstance(name, str) or not name.strip():
            raise InvalidEvent("track needs an event name (a non-empty string in `event`)")
    elif event_type in ("page", "screen"):
        if not isinstance(event.get("name", ""), str | None):
            raise InvalidEvent("name must be a string")
    elif event_type == "group":
        if _identifier(event, "groupId") is None:
            raise InvalidEvent("group needs a groupId")
    elif event_type == "alias":
        if user_id is None:
            raise InvalidEvent("alias needs userId")
        if _identifier(event, "previousId") is None:
            raise InvalidEvent("alias needs previousId")


def prepare_event(
    event: Any,
    event_type: str | None,
    received_at: datetime,
    ip: str | None,
    batch_sent_at: Any = None,
    correct_skew: bool = True,
    id_scope: str = "",
    index: int = 0,
) -> dict[str, Any]:
    """Validate and enrich one event for the raw topic.

    A missing ``messageId`` is derived from ``id_scope`` (the app), the event's
    ``index`` in its request and its content (:func:`derived_message_id`).
    """
    event = validate(event, event_type)
    if not event.get("messageId"):
        event["messageId"] = derived_message_id(id_scope, index, event)
    event.pop("writeKey", None)
    if event.get("sentAt") is None and batch_sent_at is not None:
        event["sentAt"] = batch_sent_at
    for name in _TIME_FIELDS:
        if event.get(name) is not None:
            parse_time(event[name], name)

    client_timestamp = event.get("timestamp")
    if client_timestamp is not None and event.get("originalTimestamp") is None:
        # Keep what the client said before the skew correction, as Segment does.
        event["originalTimestamp"] = client_timestamp
    event["receivedAt"] = format_time(received_at)
    try:
        event["timestamp"] = format_time(
            corrected_timestamp(
                received_at, client_timestamp, event.get("sentAt"), correct_skew
            )
        )
    except OverflowError:
        raise InvalidEvent("timestamp, corrected by sentAt, is out of range") from None

    context = event.get("context")
    if context is None:
        context = event["context"] = {}
    if ip and "ip" not in context:
        context["ip"] = ip
    if event["type"] == "identify" and not event.get("traits"):
        # Some libraries send the user's traits only in context.traits; the profile
        # destinations and the warehouse read the top-level ones.
        context_traits = context.get("traits")
        if isinstance(context_traits, dict) and context_traits:
            event["traits"] = dict(context_traits)
    return event


def derived_message_id(scope: str, index: int, event: dict[str, Any]) -> str:
    """A UUID (version 5) for an event sent without ``messageId``, the same every time
    the same request is sent again: a retry after a 503 that came after some of the
    batch was stored then yields copies that consumers drop by ``messageId``, not new
    events. The content is the event as sent (``sentAt`` and ``writeKey`` left out: a
    client may renew them per attempt), in canonical JSON; the index keeps identical
    events of one batch apart."""
    content = {k: v for k, v in event.items() if k not in _NOT_IDENTITY}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return uuid5_text(_DERIVED_ID_NAMESPACE, f"{scope}\n{index}\n{canonical}")


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``, without building UUID objects (a third of
    the time, on every event sent without a messageId)."""
    digest = bytearray(hashlib.sha1(namespace.bytes + name.encode(), usedforsecurity=False)
                       .digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def corrected_timestamp(
    received_at: datetime, timestamp: Any, sent_at: Any, correct_skew: bool = True
) -> datetime:
    """``receivedAt - (sentAt - timestamp)``: the client's time on the server's clock.

    Without ``timestamp`` the event happened when it was received; without
    ``sentAt`` (or when correction is off, as for imports) the client's timestamp is
    taken as it is.
    """
    if timestamp is None:
        return received_at
    client_time = parse_time(timestamp, "timestamp")
    if not correct_skew or sent_at is None:
        return client_time
    offset: timedelta = parse_time(sent_at, "sentAt") - client_time
    return received_at - offset


def partition_key(event: dict[str, Any]) -> bytes:
    """Kafka key that keeps one user's events in one partition, hence in order."""
    return (event.get("userId") or event["anonymousId"]).encode()
