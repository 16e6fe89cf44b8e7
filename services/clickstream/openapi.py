"""The Event API's OpenAPI 3 description, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from clickstream.events import SHORT_PATHS, TYPES
from clickstream.limits import BATCH_BYTES, BATCH_EVENTS, EVENT_BYTES

_ID = {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 512}, {"type": "integer"}]}
_TIME = {"type": "string", "format": "date-time"}

_COMMON = {
    "userId": _ID,
    "anonymousId": _ID,
    "messageId": {"type": "string", "minLength": 1, "maxLength": 512},
    "timestamp": _TIME,
    "sentAt": _TIME,
    "originalTimestamp": _TIME,
    "context": {"type": "object"},
    "integrations": {"type": "object", "additionalProperties": {}},
    "writeKey": {"type": "string", "description": "Alternative to HTTP Basic auth."},
}

_BY_TYPE: dict[str, dict[str, Any]] = {
    "track": {"properties": {"event": {"type": "string", "minLength": 1},
                             "properties": {"type": "object"}}, "required": ["event"]},
    "identify": {"properties": {"traits": {"type": "object"}}, "required": []},
    "page": {"properties": {"name": {"type": "string"}, "properties": {"type": "object"}},
             "required": []},
    "screen": {"properties": {"name": {"type": "string"}, "properties": {"type": "object"}},
               "required": []},
    "group": {"properties": {"groupId": _ID, "traits": {"type": "object"}},
              "required": ["groupId"]},
    "alias": {"properties": {"previousId": _ID}, "required": ["userId", "previousId"]},
}


def _event_schema(event_type: str, with_type: bool) -> dict[str, Any]:
    spec = _BY_TYPE[event_type]
    properties = {**_COMMON, **spec["properties"]}
    if with_type:
        properties["type"] = {"type": "string", "enum": [event_type]}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
        "description": f"At most {EVENT_BYTES} bytes once enriched.",
    }
    required = list(spec["required"]) + (["type"] if with_type else [])
    if required:
        schema["required"] = required
    return schema


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_RESPONSES = {
    "200": {"description": "Every event is durable in Kafka.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ok"}}}},
    "400": _error("Malformed or non-strict JSON (NaN, numbers beyond a double, over 64 "
                  "levels deep, not UTF-8), a body not in its Content-Encoding, or an "
                  "invalid event; nothing was accepted."),
    "401": _error("Missing or unknown write key."),
    "403": _error("The request's `Origin` is not among the app's allowed origins."),
    "413": _error(f"Event over {EVENT_BYTES} bytes, batch over {BATCH_BYTES} bytes "
                  f"or over {BATCH_EVENTS} events."),
    "415": _error("A Content-Encoding other than gzip, deflate or identity."),
    "429": _error("Rate limited; retry after the `Retry-After` seconds."),
    "503": _error("The events could not be made durable; retry later."),
}


def _operation(summary: str, schema_ref: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": [{"writeKey": []}, {}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": schema_ref}}},
        },
        "responses": _RESPONSES,
    }


def build_spec() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        name.capitalize(): _event_schema(name, with_type=False) for name in TYPES
    }
    batch_item = {"oneOf": [_event_schema(name, with_type=True) for name in TYPES]}
    batch = {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "items": batch_item, "minItems": 1,
                      "maxItems": BATCH_EVENTS},
            "sentAt": _TIME,
            "context": {"type": "object"},
            "integrations": {"type": "object"},
            "writeKey": {"type": "string"},
        },
    }
    schemas["Batch"] = batch
    schemas["Ok"] = {"type": "object", "properties": {"success": {"type": "boolean"}},
                     "required": ["success"]}
    schemas["Error"] = {
        "type": "object",
        "required": ["success", "error", "code", "message"],
        "properties": {
            "success": {"type": "boolean"},
            "error": {"type": "string"},
            "code": {"type": "string", "description": "Machine-readable reason, e.g. "
                     "`invalid_json`, `unknown_write_key`, `too_large`, `rate_limited`."},
            "message": {"type": "string", "description": "The same text as `error`."},
            "errors": {"type": "array", "items": {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "error": {"type": "string"}},
            }},
        },
    }
    paths = {
        f"/v1/{name}": {"post": _operation(f"Record one {name} event.",
                                           f"#/components/schemas/{name.capitalize()}")}
        for name in TYPES
    }
    for short, name in SHORT_PATHS.items():
        paths[f"/v1/{short}"] = {"post": _operation(
            f"Short path of /v1/{name} (analytics.js).",
            f"#/components/schemas/{name.capitalize()}")}
    paths["/v1/batch"] = {"post": _operation(
        "Record up to 2,500 events; all are accepted or none.", "#/components/schemas/Batch")}
    paths["/v1/b"] = {"post": _operation("Short path of /v1/batch (analytics.js).",
                                         "#/components/schemas/Batch")}
    paths["/v1/import"] = {"post": _operation(
        "Like batch, for historical data: timestamps are kept as sent.",
        "#/components/schemas/Batch")}
    schemas["TrackerSettings"] = {
        "type": "object",
        "required": ["integrations", "metrics"],
        "description": "What analytics.js 2.0 loads at start in place of Segment's CDN: "
                       "events go to the host the request came to, nothing else runs.",
        "properties": {
            "integrations": {"type": "object", "required": ["Segment.io"], "properties": {
                "Segment.io": {"type": "object", "required": ["apiKey", "apiHost", "protocol"],
                               "properties": {
                                   "apiKey": {"type": "string"},
                                   "apiHost": {"type": "string", "example": "data.example:8080/v1"},
                                   "protocol": {"type": "string", "enum": ["http", "https"]}}}}},
            "metrics": {"type": "object", "properties": {"sampleRate": {"type": "number",
                                                                      "enum": [0]}}},
            "remotePlugins": {"type": "array", "maxItems": 0},
        },
    }
    paths["/v1/projects/{writeKey}/settings"] = {"get": {
        "summary": "The tracker's settings for a write key (analytics.js loads them at start).",
        "parameters": [{"name": "writeKey", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {
            "200": {"description": "Events go to this platform; no destination, plugin or "
                                   "metric runs in the browser.",
                    "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/TrackerSettings"}}}},
            "403": _RESPONSES["403"],
            "404": _error("Unknown write key."),
            "503": _error("The write key cannot be checked now; retry later."),
        },
    }}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Clickstream Event API", "version": "1",
                 "description": "Segment-compatible tracking API. Bodies may be compressed "
                                "(`Content-Encoding: gzip` or `deflate`) and are read as "
                                "strict JSON whatever "
                                "their `Content-Type` (browsers send `text/plain` to avoid "
                                "a preflight). Every response carries CORS headers."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"writeKey": {
                "type": "http", "scheme": "basic",
                "description": "The write key as user name, empty password."}},
        },
    }
