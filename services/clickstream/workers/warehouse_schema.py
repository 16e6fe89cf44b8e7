"""How events become warehouse rows: table names, flattened columns, SQL types.

Follows Segment's warehouse layout: ``tracks`` holds every track event's common
fields and each event name gets its own table with its properties; ``identifies``,
``pages``, ``screens``, ``groups`` and ``aliases`` hold the other types. Nested
objects are flattened with ``_`` (``context.library.name`` -> ``context_library_name``).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any

#: Postgres's limit (NAMEDATALEN - 1 bytes; it cuts longer names itself, and then the
#: name it created is not the one asked for); Redshift's is 127. A longer name keeps
#: its start and ends with a hash of the whole, so two long names do not collide.
MAX_IDENTIFIER = 63
_HASHED_SUFFIX = 9  # "_" and 8 hex digits
VARCHAR = "VARCHAR(65535)"
TIMESTAMP = "TIMESTAMP"
TYPE_TABLES = {"identify": "identifies", "page": "pages", "screen": "screens",
               "group": "groups", "alias": "aliases", "track": "tracks"}
RESERVED_TABLES = set(TYPE_TABLES.values()) | {"users"}

_TIME_COLUMNS = {"received_at", "sent_at", "timestamp", "original_timestamp", "uuid_ts"}
_FIXED = {  # source field -> column, for every table
    "messageId": "id", "receivedAt": "received_at", "sentAt": "sent_at",
    "timestamp": "timestamp", "originalTimestamp": "original_timestamp",
    "userId": "user_id", "anonymousId": "anonymous_id",
}
_BY_TYPE = {"track": {"event": "event"}, "page": {"name": "name"}, "screen": {"name": "name"},
            "group": {"groupId": "group_id"}, "alias": {"previousId": "previous_id"}}
_PAYLOAD = {"track": "properties", "page": "properties", "screen": "properties",
            "identify": "traits", "group": "traits"}


def identifier(name: str) -> str:
    """A lowercase SQL identifier from any name: ``Order Completed`` -> ``order_completed``."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)  # camelCase -> camel_case
    cleaned = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not cleaned or cleaned[0].isdigit():
        cleaned = "_" + cleaned
    if len(cleaned) <= MAX_IDENTIFIER:
        return cleaned
    digest = hashlib.sha256(cleaned.encode()).hexdigest()[:_HASHED_SUFFIX - 1]
    return f"{cleaned[:MAX_IDENTIFIER - _HASHED_SUFFIX]}_{digest}"


def event_table(event_name: str) -> str:
    table = identifier(event_name)
    return table + "_events" if table in RESERVED_TABLES else table


def flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        column = identifier(f"{prefix}_{key}" if prefix else str(key))
        if isinstance(item, dict):
            flat.update(flatten(item, column))
        elif item is not None:
            flat[column] = item
    return flat


def rows_for(event: dict[str, Any], loaded_at: datetime) -> dict[str, dict[str, Any]]:
    """The rows one event adds, by table."""
    event_type = event["type"]
    common: dict[str, Any] = {"uuid_ts": loaded_at}
    for source, column in _FIXED.items():
        if event.get(source) is not None:
            common[column] = event[source]
    for source, column in _BY_TYPE.get(event_type, {}).items():
        if event.get(source) is not None:
            common[column] = event[source]
    if isinstance(event.get("context"), dict):
        common.update(flatten(event["context"], "context"))
    payload_field = _PAYLOAD.get(event_type)
    payload = event.get(payload_field) if payload_field else None
    payload_columns = flatten(payload) if isinstance(payload, dict) else {}

    if event_type == "track":
        common["event_text"] = event["event"]
        common["event"] = identifier(event["event"])
        # tracks: the common fields only; the event's own table adds its properties.
        return {"tracks": common,
                event_table(event["event"]): {**payload_columns, **common}}
    return {TYPE_TABLES[event_type]: {**payload_columns, **common}}


def sql_type(column: str, value: Any) -> str:
    if column in _TIME_COLUMNS:
        return TIMESTAMP
    if column == "id":
        return "VARCHAR(512)"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        # JSON has one number type and clients send 10 for 10.0: an integer column
        # would refuse the next 10.5.
        return "DOUBLE PRECISION"
    return VARCHAR


def coerce(value: Any, column_type: str) -> Any:
    """``value`` as the column's existing type; None when it cannot be (Segment drops
    values whose type conflicts with the column)."""
    column_type = column_type.lower()
    if value is None:
        return None
    if column_type.startswith(("character", "varchar", "text")):
        if isinstance(value, str):
            # Neither Postgres nor Redshift stores NUL in text: dropped, as Segment does.
            return value.replace("\x00", "")
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list | dict):
            return json.dumps(value)
        return str(value)
    if column_type.startswith("timestamp"):
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        return moment
    if column_type == "boolean":
        return value if isinstance(value, bool) else None
    if column_type in ("bigint", "integer", "smallint"):
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None
    if column_type in ("double precision", "real", "numeric"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value)
    return value
