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


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {_JSON: {"schema": _ref(schema)}}}


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
                               "401": _UNAUTHORIZED, "503": _UNAVAILABLE}}},
    "/api/v1/tokens/{token_id}": {"delete": {
        "summary": "Revoke a token (yours, or anybody's for an admin).",
        "parameters": [{"name": "token_id", "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 0}}],
        "responses": {"200": _answer("The revoked token.", "Token"),
                      "401": _UNAUTHORIZED, "404": _error("No such token of yours."),
                      "503": _UNAVAILABLE}}},
}

_WHEN = {"type": ["string", "null"], "format": "date-time"}
_ROLE = {"enum": ["admin", "viewer"]}
_TOKEN = {"type": "object", "required": ["id", "name", "role", "prefix", "state"],
          "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "role": _ROLE,
                         "prefix": {"type": "string"}, "owner": {"type": "string"},
                         "state": {"enum": ["active", "expired", "revoked"]},
                         "created_at": _WHEN, "expires_at": _WHEN, "last_used_at": _WHEN,
                         "revoked_at": _WHEN}}

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
