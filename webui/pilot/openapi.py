"""Pilot's OpenAPI 3.1 description of /api/v1, served at `/openapi.json`: written by hand,
in this one place, and checked against the app's routes by tests/unit/pilot."""

from __future__ import annotations

from typing import Any

_JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(description: str, schema: str | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema:
        answer["content"] = {_JSON: {"schema": _ref(schema)}}
    return answer


def _error(description: str) -> dict[str, Any]:
    return _answer(description, "Error")


_UNAUTHORIZED = _error("No valid session or API token.")
_FORBIDDEN = _error("A viewer cannot do this.")
_UNAVAILABLE = _error("Commander or Pilot's database is unavailable.")
_COMMANDER = {"401": _UNAUTHORIZED, "503": _UNAVAILABLE}
_NUMBER = {"type": "integer", "minimum": 0}


def _revision(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _NUMBER,
            "description": "A revision number of the platform's ledger."}


def _body(schema: str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {_JSON: {"schema": _ref(schema)}}}


def _id(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _NUMBER,
            "description": description}


_APP_ID = _id("app_id", "A clickstream app's id.")
_KEY_ID = _id("key_id", "The id of one of the app's write keys.")
_NO_CLICKSTREAM = ("or the clickstream module is not enabled on this platform "
                   "(modules.clickstream.enabled)")
_CLICKSTREAM_DOWN = _error("The clickstream database (or Pilot's) is unavailable, or not "
                           "migrated yet.")
_CLICKSTREAM = {"401": _UNAUTHORIZED, "503": _CLICKSTREAM_DOWN}
_DESTINATION_ID = _id("destination_id", "The id of one of the app's destinations.")
_NO_DESTINATION = _error(f"No such app or destination of it, {_NO_CLICKSTREAM}.")
_EVENTS_DOWN = _error("Redis (where the recent events are kept) or the clickstream "
                      "database is unavailable, or Pilot is not given Redis.")


PATHS: dict[str, dict[str, Any]] = {
    "/health": {"get": {"summary": "200 while Pilot can serve; what is down.", "security": [],
                        "responses": {"200": _answer("Serving.", "Health"),
                                      "503": _answer("Its database is down.", "Health")}}},
    "/metrics": {"get": {"summary": "Prometheus metrics.", "security": [],
                         "responses": {"200": {"description": "Text exposition format.",
                                               "content": {"text/plain": {
                                                   "schema": {"type": "string"}}}}}}},
    "/openapi.json": {"get": {"summary": "This document.", "security": [],
                              "responses": {"200": _answer("OpenAPI 3.1.")}}},
    "/api/v1/me": {"get": {"summary": "Who the request is authenticated as.",
                           "responses": {"200": _answer("The account.", "Me"),
                                         "401": _UNAUTHORIZED}}},
    "/api/v1/status": {"get": {
        "summary": "Commander's status of the platform: modules, services (ready/desired, "
                   "health, image), revisions, operations under way.",
        "responses": {"200": _answer("The platform's status (Commander's Status)."),
                      **_COMMANDER}}},
    "/api/v1/releases": {"get": {
        "summary": "Every revision of the ledger, oldest first.",
        "responses": {"200": _answer("The revisions."), **_COMMANDER}}},
    "/api/v1/releases/{number}": {"get": {
        "summary": "One revision: config, manifests, images; secrets as hashes only.",
        "parameters": [_revision("number")],
        "responses": {"200": _answer("The revision."), "404": _error("No such revision."),
                      **_COMMANDER}}},
    "/api/v1/releases/{number}/diff/{other}": {"get": {
        "summary": "What changed from revision `number` to revision `other`.",
        "parameters": [_revision("number"), _revision("other")],
        "responses": {"200": _answer("The differences."), "404": _error("No such revision."),
                      **_COMMANDER}}},
    "/api/v1/rollback": {"post": {
        "summary": "Ask Commander to go back to a revision that was deployed (admins).",
        "requestBody": _body("RollbackRequest"),
        "responses": {"202": _answer("Queued; follow the operation.", "Accepted"),
                      "400": _error("Malformed JSON or field."), "403": _FORBIDDEN,
                      "404": _error("No such revision."),
                      "409": _error("That revision was never deployed."), **_COMMANDER}}},
    "/api/v1/operations/{operation_id}": {"get": {
        "summary": "One of Commander's operations, with its progress lines.",
        "parameters": [{"name": "operation_id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": _answer("The operation."), "404": _error("No such operation."),
                      **_COMMANDER}}},
    "/api/v1/tokens": {
        "get": {"summary": "Your API tokens (an admin's: everybody's), newest first.",
                "responses": {"200": _answer("The tokens.", "Tokens"), "401": _UNAUTHORIZED,
                              "503": _UNAVAILABLE}},
        "post": {"summary": "Make an API token; the answer is the only time it is shown.",
                 "requestBody": _body("TokenRequest"),
                 "responses": {"201": _answer("The token, with `token`.", "NewToken"),
                               "400": _error("Malformed JSON or field."),
                               "401": _UNAUTHORIZED,
                               "403": _error("Asked with an API token: tokens are made by "
                                             "a signed-in user."),
                               "503": _UNAVAILABLE}}},
    "/api/v1/tokens/{token_id}": {"delete": {
        "summary": "Revoke a token (yours, or anybody's for an admin).",
        "parameters": [{"name": "token_id", "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 0}}],
        "responses": {"200": _answer("The revoked token.", "Token"),
                      "401": _UNAUTHORIZED, "404": _error("No such token of yours."),
                      "503": _UNAVAILABLE}}},
    "/api/v1/apps": {
        "get": {"summary": "The clickstream apps, with their write keys (never the keys "
                           "themselves: their first characters).",
                "responses": {"200": _answer("The apps, oldest first.", "Apps"),
                              "404": _error(f"Nothing to list, {_NO_CLICKSTREAM}."),
                              **_CLICKSTREAM}},
        "post": {"summary": "Make an app and its first write key (admins); the answer is "
                            "the only time the key is shown.",
                 "requestBody": _body("AppRequest"),
                 "responses": {"201": _answer("The app, with `write_key`.", "NewApp"),
                               "400": _error("Malformed JSON or field."), "403": _FORBIDDEN,
                               "404": _error(f"Not possible, {_NO_CLICKSTREAM}."),
                               "409": _error("There is an app of that name."),
                               **_CLICKSTREAM}}},
    "/api/v1/apps/{app_id}": {"get": {
        "summary": "One clickstream app with its write keys.",
        "parameters": [_APP_ID],
        "responses": {"200": _answer("The app.", "App"),
                      "404": _error(f"No such app, {_NO_CLICKSTREAM}."), **_CLICKSTREAM}}},
    "/api/v1/apps/{app_id}/keys": {
        "get": {"summary": "The app's write keys, active and revoked, oldest first.",
                "parameters": [_APP_ID],
                "responses": {"200": _answer("The keys.", "WriteKeys"),
                              "404": _error(f"No such app, {_NO_CLICKSTREAM}."),
                              **_CLICKSTREAM}},
        "post": {"summary": "Add a write key to the app (admins), to rotate: the app's other "
                            "keys keep working until revoked. The answer is the only time "
                            "the key is shown.",
                 "parameters": [_APP_ID],
                 "requestBody": _body("WriteKeyRequest", required=False),
                 "responses": {"201": _answer("The key, with `write_key`.", "NewWriteKey"),
                               "400": _error("A body that is not an empty JSON object."),
                               "403": _FORBIDDEN,
                               "404": _error(f"No such app, {_NO_CLICKSTREAM}."),
                               **_CLICKSTREAM}}},
    "/api/v1/apps/{app_id}/keys/{key_id}": {
        "get": {"summary": "One of the app's write keys.",
                "parameters": [_APP_ID, _KEY_ID],
                "responses": {"200": _answer("The key.", "WriteKey"),
                              "404": _error(f"No such app or key of it, {_NO_CLICKSTREAM}."),
                              **_CLICKSTREAM}},
        "delete": {"summary": "Revoke one of the app's write keys for good (admins): events "
                              "sent with it are refused from then on. Revoking a revoked key "
                              "changes nothing.",
                   "parameters": [_APP_ID, _KEY_ID],
                   "responses": {"200": _answer("The revoked key.", "WriteKey"),
                                 "403": _FORBIDDEN,
                                 "404": _error(f"No such app or key of it, {_NO_CLICKSTREAM}."),
                                 **_CLICKSTREAM}}},
    "/api/v1/apps/{app_id}/destinations": {
        "get": {"summary": "The app's destinations, oldest first, each with its delivery "
                           "counts. Secrets are never shown, nor passwords in URLs and DSNs.",
                "parameters": [_APP_ID],
                "responses": {"200": _answer("The destinations.", "Destinations"),
                              "404": _error(f"No such app, {_NO_CLICKSTREAM}."),
                              **_CLICKSTREAM}},
        "post": {"summary": "Add a destination to the app (admins): a webhook, a warehouse or "
                            "Redis, with the settings the clickstream workers accept.",
                 "parameters": [_APP_ID],
                 "requestBody": _body("DestinationRequest"),
                 "responses": {"201": _answer("The destination.", "Destination"),
                               "400": _error("Malformed JSON, or a field or setting the "
                                             "workers could not use (each one named)."),
                               "403": _FORBIDDEN,
                               "404": _error(f"No such app, {_NO_CLICKSTREAM}."),
                               "409": _error("The app has a destination of that name."),
                               **_CLICKSTREAM}}},
    "/api/v1/apps/{app_id}/destinations/{destination_id}": {
        "get": {"summary": "One of the app's destinations, with its delivery counts.",
                "parameters": [_APP_ID, _DESTINATION_ID],
                "responses": {"200": _answer("The destination.", "Destination"),
                              "404": _NO_DESTINATION, **_CLICKSTREAM}},
        "patch": {"summary": "Enable or disable the destination, or change its event filters "
                             "(admins); the router and workers follow at once.",
                  "parameters": [_APP_ID, _DESTINATION_ID],
                  "requestBody": _body("DestinationChange"),
                  "responses": {"200": _answer("The destination as it is now.", "Destination"),
                                "400": _error("Malformed JSON or field."), "403": _FORBIDDEN,
                                "404": _NO_DESTINATION, **_CLICKSTREAM}},
        "delete": {"summary": "Delete the destination (admins): the app's events are no longer "
                              "delivered to it.",
                   "parameters": [_APP_ID, _DESTINATION_ID],
                   "responses": {"200": _answer("The destination as it was.", "Destination"),
                                 "403": _FORBIDDEN, "404": _NO_DESTINATION, **_CLICKSTREAM}}},
    "/api/v1/apps/{app_id}/destinations/{destination_id}/replay": {"post": {
        "summary": "Send the destination's dead letters to it again (admins), as the "
                   "clickstream CLI's `replay --destination ID` does: each one once, however "
                   "often this is asked.",
        "parameters": [_APP_ID, _DESTINATION_ID],
        "requestBody": _body("ReplayRequest", required=False),
        "responses": {"200": _answer("How many were sent, and the destination's counts.",
                                     "Replayed"),
                      "400": _error("A body that is not an empty JSON object."),
                      "403": _FORBIDDEN, "404": _NO_DESTINATION,
                      "409": _error("A replay of this destination is under way already."),
                      "401": _UNAUTHORIZED,
                      "503": _error("Kafka is unavailable or not given to Pilot, the replay "
                                    "did not finish in time (asking again sends the rest), "
                                    "or the clickstream database is unavailable.")}}},
    "/api/v1/apps/{app_id}/events": {"get": {
        "summary": "The app's latest events, newest first, from the recent-events stream the "
                   "router keeps (about the last 1000); the live debugger follows the same "
                   "stream at /apps/{app_id}/events/stream (text/event-stream).",
        "parameters": [_APP_ID, {"name": "limit", "in": "query", "required": False,
                                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000,
                                            "default": 100}}],
        "responses": {"200": _answer("The events.", "LiveEvents"),
                      "400": _error("A `limit` out of range."),
                      "404": _error(f"No such app, {_NO_CLICKSTREAM}."),
                      "401": _UNAUTHORIZED, "503": _EVENTS_DOWN}}},
    "/api/v1/charts": {"get": {
        "summary": "The clickstream charts over a window ending now, from Prometheus: events "
                   "received, requests rejected (by reason), events delivered, retried and "
                   "dead-lettered (by destination) per second, consumer lag (by "
                   "destination). Once a query fails the rest are not asked; each chart "
                   "then carries the `problem`.",
        "parameters": [{"name": "window", "in": "query", "required": False,
                        "schema": {"enum": ["15m", "1h", "6h", "24h", "7d"],
                                   "default": "1h"}}],
        "responses": {"200": _answer("The charts.", "Charts"),
                      "400": _error("An unknown `window`."),
                      "404": _error("The monitoring module is not enabled on this platform "
                                    "(modules.monitoring.enabled)."),
                      "401": _UNAUTHORIZED}}},
    "/api/v1/alerts": {"get": {
        "summary": "The alerts firing now (not silenced, not inhibited), from Alertmanager; "
                   "critical first, then warning, info, others.",
        "responses": {"200": _answer("The alerts.", "Alerts"),
                      "404": _error("The monitoring module is not enabled on this platform "
                                    "(modules.monitoring.enabled)."),
                      "401": _UNAUTHORIZED,
                      "503": _error("Alertmanager is unreachable or failed to answer.")}}},
    "/api/v1/airflow": {"get": {
        "summary": "Airflow's health: its components from the API server's "
                   "/api/v2/monitor/health, the Celery workers online from Flower, and the "
                   "link to its UI. What could not be read is in `problem` and "
                   "`workers_problem`.",
        "responses": {"200": _answer("Airflow's status.", "Airflow"),
                      "404": _error("The Airflow module is not enabled on this platform "
                                    "(modules.airflow.enabled)."),
                      "401": _UNAUTHORIZED}}},
}

_WHEN = {"type": ["string", "null"], "format": "date-time"}
_TEXT = {"type": ["string", "null"]}
_ROLE = {"enum": ["admin", "viewer"]}
_TOKEN = {"type": "object", "required": ["id", "name", "role", "prefix", "state"],
          "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "role": _ROLE,
                         "prefix": {"type": "string"}, "owner": {"type": "string"},
                         "state": {"enum": ["active", "expired", "revoked"]},
                         "created_at": _WHEN, "expires_at": _WHEN, "last_used_at": _WHEN,
                         "revoked_at": _WHEN}}

_WRITE_KEY = {"type": "object", "required": ["id", "app_id", "prefix", "state"],
              "properties": {"id": {"type": "integer"}, "app_id": {"type": "integer"},
                             "prefix": {"type": "string",
                                        "description": "The key's first characters."},
                             "state": {"enum": ["active", "revoked"]}}}
_SHOWN_ONCE = {"type": "object", "required": ["write_key", "event_api"], "properties": {
    "write_key": {"type": "string", "description": "The key itself, shown this once."},
    "event_api": {"type": "string", "description": "Where to send events: this platform's "
                                                   "Event API, e.g. https://host/v1."}}}
_APP = {"type": "object", "required": ["id", "name", "rate_limit", "active_keys", "keys"],
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                       "rate_limit": {"type": ["integer", "null"],
                                      "description": "Events/s per Event API process."},
                       "active_keys": {"type": "integer"},
                       "keys": {"type": "array", "items": _ref("WriteKey")}}}

_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 200},
          "maxItems": 100}
_FILTERS = {"type": "object", "additionalProperties": False, "properties": {
    "types": {"type": "array", "uniqueItems": True, "description": "Only these event types "
              "(none: all).", "items": {"enum": ["track", "identify", "page", "screen",
                                                 "group", "alias"]}},
    "events": {**_NAMES, "description": "Only track events of these names (none: all); "
                                        "other types are not affected."}}}
_COUNT = {"type": "integer", "minimum": 0}
_DESTINATION = {
    "type": "object",
    "required": ["id", "app_id", "name", "kind", "enabled", "settings", "secret", "filters",
                 "delivery"],
    "properties": {
        "id": {"type": "integer"}, "app_id": {"type": "integer"}, "name": {"type": "string"},
        "kind": {"enum": ["webhook", "warehouse", "redis"]}, "enabled": {"type": "boolean"},
        "settings": {"type": "object", "description": "As set; `url` and `dsn` with any "
                                                      "password as ***."},
        "secret": {"enum": ["set", None], "description": "Whether a webhook signs its "
                                                         "requests; the secret is not shown."},
        "filters": _FILTERS,
        "delivery": {"type": "object", "properties": {
            "delivered": _COUNT, "retried": _COUNT, "dead_lettered": _COUNT,
            "replayed": _COUNT, "waiting_for_replay": _COUNT,
            "last_delivered_at": _WHEN, "last_error": {"type": ["string", "null"]},
            "last_error_at": _WHEN}}}}
_SETTINGS = {
    "type": "object", "additionalProperties": False,
    "description": "webhook: url (required), batch_size, timeout_seconds, headers; warehouse: "
                   "dsn (required), schema, batch_size, flush_seconds, load (stream or batch); "
                   "redis: url (empty: the "
                   "platform's Redis), key_prefix; every kind: max_attempts, "
                   "retry_window_seconds, initial_backoff_seconds, max_backoff_seconds.",
    "properties": {
        "url": {"type": "string"}, "dsn": {"type": "string"}, "schema": {"type": "string"},
        "key_prefix": {"type": "string"},
        "batch_size": {"type": "integer", "minimum": 1},
        "timeout_seconds": {"type": "number", "minimum": 0},
        "flush_seconds": {"type": "number", "minimum": 0},
        "load": {"enum": ["stream", "batch"]},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "max_attempts": {"type": "integer", "minimum": 1},
        "retry_window_seconds": {"type": "number", "minimum": 0},
        "initial_backoff_seconds": {"type": "number", "minimum": 0},
        "max_backoff_seconds": {"type": "number", "minimum": 0}}}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "status"],
              "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
    "Health": {"type": "object", "required": ["status", "checks"], "properties": {
        "status": {"enum": ["ok", "degraded", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "Me": {"type": "object", "required": ["username", "role", "via"], "properties": {
        "id": {"type": "integer"}, "username": {"type": "string"}, "role": _ROLE,
        "via": {"enum": ["session", "token"]}, "created_at": _WHEN}},
    "RollbackRequest": {"type": "object", "required": ["revision"],
                        "additionalProperties": False,
                        "properties": {"revision": {"type": "integer", "minimum": 1}}},
    "Accepted": {"type": "object", "required": ["operation", "url"], "properties": {
        "operation": {"type": "string"}, "state": {"type": "string"},
        "description": {"type": "string"}, "url": {"type": "string"},
        "page": {"type": "string"}, "events": {"type": "string"}}},
    "TokenRequest": {"type": "object", "required": ["name"], "additionalProperties": False,
                     "properties": {
                         "name": {"type": "string", "minLength": 1, "maxLength": 100},
                         "role": {**_ROLE, "default": "viewer",
                                  "description": "At most the owner's own role."},
                         "expires_in_days": {"type": "integer", "minimum": 1,
                                             "maximum": 3650}}},
    "Token": _TOKEN,
    "NewToken": {"allOf": [_ref("Token"), {"type": "object", "required": ["token"],
                                           "properties": {"token": {"type": "string"}}}]},
    "Tokens": {"type": "object", "properties": {"tokens": {"type": "array",
                                                           "items": _ref("Token")}}},
    "AppRequest": {"type": "object", "required": ["name"], "additionalProperties": False,
                   "properties": {
                       "name": {"type": "string", "minLength": 1, "maxLength": 100,
                                "description": "Unique; not only digits."},
                       "rate_limit": {"type": "integer", "minimum": 1, "maximum": 1000000,
                                      "description": "Events/s per Event API process; "
                                                     "left out: no limit."}}},
    "App": _APP,
    "NewApp": {"allOf": [_ref("App"), _SHOWN_ONCE]},
    "Apps": {"type": "object", "properties": {"apps": {"type": "array",
                                                       "items": _ref("App")}}},
    "WriteKeyRequest": {"type": "object", "additionalProperties": False, "properties": {}},
    "WriteKey": _WRITE_KEY,
    "NewWriteKey": {"allOf": [_ref("WriteKey"), _SHOWN_ONCE]},
    "WriteKeys": {"type": "object", "properties": {"keys": {"type": "array",
                                                            "items": _ref("WriteKey")}}},
    "Destination": _DESTINATION,
    "Destinations": {"type": "object", "properties": {"destinations": {
        "type": "array", "items": _ref("Destination")}}},
    "DestinationRequest": {
        "type": "object", "required": ["name", "kind"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100,
                     "description": "Unique in the app; events' `integrations` map names it."},
            "kind": {"enum": ["webhook", "warehouse", "redis"]},
            "settings": _SETTINGS,
            "secret": {"type": "string", "minLength": 1, "maxLength": 1000,
                       "description": "A webhook's signing secret: X-Clickstream-Signature."},
            "filters": _FILTERS,
            "enabled": {"type": "boolean", "default": True}}},
    "DestinationChange": {"type": "object", "additionalProperties": False, "properties": {
        "enabled": {"type": "boolean"}, "filters": _FILTERS}},
    "ReplayRequest": {"type": "object", "additionalProperties": False, "properties": {}},
    "Replayed": {"type": "object", "required": ["replayed", "destination"], "properties": {
        "replayed": {"type": "integer", "minimum": 0}, "destination": _ref("Destination")}},
    "LiveEvent": {"type": "object", "required": ["id", "received_at", "summary", "event"],
                  "properties": {
                      "id": {"type": "string", "description": "Its id in the stream "
                                                              "(Last-Event-ID to resume)."},
                      "received_at": {"type": "string", "format": "date-time"},
                      "summary": {"type": "string"},
                      "event": {"description": "The event as the Event API accepted it."},
                      "raw": {"type": "string", "description": "Only when it is not JSON."}}},
    "Charts": {"type": "object", "required": ["window", "start", "end", "step", "times",
                                              "charts", "problem"], "properties": {
        "window": {"type": "string"}, "start": _COUNT, "end": _COUNT,
        "step": {"type": "integer", "minimum": 1, "description": "Seconds between points."},
        "times": {"type": "array", "items": {"type": "integer"},
                  "description": "Unix times of the points, shared by every series."},
        "problem": _TEXT,
        "charts": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "string"}, "title": {"type": "string"}, "unit": {"type": "string"},
            "empty": {"type": "string", "description": "What no series means."},
            "problem": _TEXT,
            "series": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"},
                "values": {"type": "array", "items": {"type": ["number", "null"]},
                           "description": "One per time; null where there is none."},
                "latest": {"type": ["number", "null"]}}}}}}}}},
    "Alerts": {"type": "object", "properties": {"alerts": {"type": "array", "items": {
        "type": "object", "properties": {
            "name": {"type": "string"}, "severity": {"type": "string"},
            "summary": {"type": "string"}, "starts_at": {"type": "string"},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}}},
    "Airflow": {"type": "object", "required": ["link", "healthy"], "properties": {
        "link": {"type": "string"}, "healthy": {"type": "boolean"}, "problem": _TEXT,
        "components": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "status": {"type": "string"},
            "heartbeat": {"type": ["string", "null"]}}}},
        "workers": {"type": ["array", "null"], "items": {"type": "string"},
                    "description": "Workers online; null when Flower could not say."},
        "workers_problem": _TEXT}},
    "LiveEvents": {"type": "object", "properties": {"events": {"type": "array",
                                                               "items": _ref("LiveEvent")}}},
}


def build_spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pilot", "version": "1",
                 "description": "heliostat's web console. Changes are asked of Commander."},
        "security": [{"bearerToken": []}, {"sessionCookie": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer",
                                "description": "An API token (`pilot_…`), made on the API "
                                               "tokens page or with POST /api/v1/tokens."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "pilot_session",
                                  "description": "A signed-in browser; changes also need "
                                                 "the X-CSRF-Token header."},
            },
            "schemas": SCHEMAS,
        },
    }
