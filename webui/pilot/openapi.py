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
}

_WHEN = {"type": ["string", "null"], "format": "date-time"}
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
