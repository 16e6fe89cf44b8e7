"""Commander's OpenAPI 3.1 description, served at `/openapi.json`: written by hand, in this
one place, and checked against the app's routes by tests/unit/commander."""

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


_UNAUTHORIZED = _error("Missing or wrong bearer token.")
_NUMBER = {"type": "integer", "minimum": 0}  # 0 and more than the ledger holds: 404


def _revision_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _NUMBER,
            "description": "A revision number of the ledger."}


_OPERATION_ID = {"name": "operation_id", "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^op-[0-9]+$"}}


def _change(summary: str, body: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "requestBody": {"required": True, "content": {_JSON: {"schema": _ref(body)}}},
        "responses": {
            "202": _answer("Queued; follow the operation.", "Accepted"),
            "400": _error("Malformed JSON, or a field missing or of the wrong type."),
            "401": _UNAUTHORIZED,
            "413": _error("The body is larger than Commander takes."),
            "503": _error("The ledger or the target cannot be read."),
            **extra,
        },
    }


PATHS: dict[str, dict[str, Any]] = {
    "/health": {"get": {"summary": "Liveness: the worker thread runs.", "security": [],
                        "responses": {"200": _answer("Healthy."),
                                      "503": _answer("The worker stopped.")}}},
    "/metrics": {"get": {"summary": "Prometheus metrics.", "security": [],
                         "responses": {"200": {"description": "Text exposition format.",
                                               "content": {"text/plain": {
                                                   "schema": {"type": "string"}}}}}}},
    "/openapi.json": {"get": {"summary": "This document.", "security": [],
                              "responses": {"200": _answer("OpenAPI 3.1.")}}},
    "/api/v1/status": {"get": {
        "summary": "Modules, services (ready/desired, health, image, digest), the deployed "
                   "and pending revisions, and the operations queued.",
        "responses": {"200": _answer("The platform's status.", "Status"),
                      "401": _UNAUTHORIZED,
                      "503": _error("The target cannot be read.")}}},
    "/api/v1/releases": {"get": {
        "summary": "Every revision of the ledger, oldest first.",
        "responses": {"200": _answer("The revisions.", "Releases"), "401": _UNAUTHORIZED}}},
    "/api/v1/releases/{number}": {"get": {
        "summary": "One revision: config, manifests, images; secrets as hashes only.",
        "parameters": [_revision_parameter("number")],
        "responses": {"200": _answer("The revision.", "Release"), "401": _UNAUTHORIZED,
                      "404": _error("No such revision.")}}},
    "/api/v1/releases/{number}/diff/{other}": {"get": {
        "summary": "What changed from revision `number` to revision `other`.",
        "parameters": [_revision_parameter("number"), _revision_parameter("other")],
        "responses": {"200": _answer("The differences.", "Diff"), "401": _UNAUTHORIZED,
                      "404": _error("No such revision.")}}},
    "/api/v1/services/{name}/image": {"post": {
        **_change("Run a service, or its group, on another image: a new revision, "
                  "health-gated, rolled back automatically on failure.", "ImageRequest",
                  {"404": _error("No such service or group on this platform."),
                   "409": _error("The platform is not installed, the services include "
                                 "Commander itself, or this Commander renders the deployed "
                                 "configuration otherwise than its installer did.")}),
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"type": "string"},
                        "description": "A service or a group (modules.commander.groups)."}]}},
    "/api/v1/rollback": {"post": _change(
        "Go back to a revision that was deployed, as a new revision.", "RollbackRequest",
        {"404": _error("No such revision."),
         "409": _error("That revision was never deployed.")})},
    "/api/v1/operations": {"get": {
        "summary": "Every operation, oldest first.",
        "responses": {"200": _answer("The operations.", "Operations"),
                      "401": _UNAUTHORIZED}}},
    "/api/v1/operations/{operation_id}": {"get": {
        "summary": "One operation, with its progress lines.",
        "parameters": [_OPERATION_ID],
        "responses": {"200": _answer("The operation.", "OperationWithEvents"),
                      "401": _UNAUTHORIZED, "404": _error("No such operation.")}}},
    "/api/v1/operations/{operation_id}/events": {"get": {
        "summary": "Its progress lines as server-sent events (`progress`, then one `end` "
                   "carrying the operation); resumes after `Last-Event-ID`.",
        "parameters": [_OPERATION_ID],
        "responses": {"200": {"description": "An event stream.",
                              "content": {"text/event-stream": {
                                  "schema": {"type": "string"}}}},
                      "401": _UNAUTHORIZED, "404": _error("No such operation.")}}},
    "/api/v1/audit": {"get": {
        "summary": "The audit log, oldest first: who asked what, when, from where, and "
                   "the outcome.",
        "parameters": [{"name": "limit", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100000},
                        "description": "Only the newest this many entries (default 1000)."}],
        "responses": {"200": _answer("The entries.", "Audit"), "400": _error("Bad limit."),
                      "401": _UNAUTHORIZED}}},
    "/webhooks/registry": {"post": {
        "summary": "The registry's notifications (Docker distribution's envelope). Mapped "
                   "pushes are queued as image updates; anything else is ignored and "
                   "audited.",
        "security": [{"webhookSecret": []}],
        "requestBody": {"required": True, "content": {
            "application/vnd.docker.distribution.events.v1+json": {"schema": _ref("Envelope")},
            _JSON: {"schema": _ref("Envelope")}}},
        "responses": {"202": _answer("What each event became.", "WebhookResult"),
                      "400": _error("Not a notification envelope."),
                      "401": _error("Missing or wrong X-Heliostat-Webhook-Secret header.")}}},
}

_OPERATION = {
    "type": "object",
    "required": ["id", "kind", "state", "description", "who", "created_at"],
    "properties": {
        "id": {"type": "string"},
        "kind": {"enum": ["image", "rollback", "registry"]},
        "state": {"enum": ["queued", "waiting", "running", "deployed", "unchanged",
                           "rolled-back", "failed", "superseded"]},
        "description": {"type": "string"},
        "who": {"type": "string"},
        "remote": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string"},
        "services": {"type": "array", "items": {"type": "string"}},
        "image": {"type": "string"},
        "revision": {"type": ["integer", "null"]},
        "reason": {"type": "string"},
        "rolled_back_to": {"type": ["integer", "null"]},
        "superseded_by": {"type": ["string", "null"]},
    },
}

_RELEASE_SUMMARY = {
    "type": "object",
    "properties": {"revision": {"type": "integer"}, "status": {"type": "string"},
                   "origin": {"enum": ["cli", "commander", "pilot"]},
                   "description": {"type": "string"}, "created_at": {"type": "string"},
                   "updated_at": {"type": "string"}, "bundle_version": {"type": "string"},
                   "reason": {"type": "string"}},
}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "status"],
              "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
    "ImageRequest": {"type": "object", "required": ["image"], "additionalProperties": False,
                     "properties": {"image": {
                         "type": "string", "maxLength": 512,
                         "description": "A tag (`1.4.2`), a digest (`sha256:<hex>`) or a "
                                        "whole reference (`host:5000/airflow@sha256:…`)."}}},
    "RollbackRequest": {"type": "object", "required": ["revision"],
                        "additionalProperties": False,
                        "properties": {"revision": {"type": "integer", "minimum": 1}}},
    "Accepted": {"type": "object", "required": ["operation", "url"],
                 "properties": {"operation": {"type": "string"}, "state": {"type": "string"},
                                "description": {"type": "string"},
                                "url": {"type": "string"}, "events": {"type": "string"}}},
    "Operation": _OPERATION,
    "OperationWithEvents": {"allOf": [_ref("Operation"), {
        "type": "object", "properties": {"events": {"type": "array",
                                                    "items": {"type": "string"}}}}]},
    "Operations": {"type": "object", "properties": {
        "operations": {"type": "array", "items": _ref("Operation")}}},
    "Status": {"type": "object", "required": ["platform", "services"], "properties": {
        "platform": {"type": "string"},
        "modules": {"type": "array", "items": {"type": "string"}},
        "revision": {"type": ["object", "null"]},
        "pending": {"type": ["object", "null"]},
        "services": {"type": "array", "items": {"type": "object", "properties": {
            "service": {"type": "string"}, "module": {"type": ["string", "null"]},
            "ready": {"type": "integer"}, "desired": {"type": "integer"},
            "health": {"type": "string"}, "image": {"type": "string"},
            "image_id": {"type": ["string", "null"]},
            "image_digest": {"type": ["string", "null"]},
            "revisions": {"type": "array", "items": {"type": "integer"}},
            "age_seconds": {"type": ["integer", "null"]}}}},
        "operations": {"type": "array", "items": _ref("Operation")}}},
    "Releases": {"type": "object", "properties": {
        "releases": {"type": "array", "items": _RELEASE_SUMMARY}}},
    "Release": {"allOf": [_RELEASE_SUMMARY, {"type": "object", "properties": {
        "bundle_digest": {"type": "string"},
        "config": {"type": "object", "description": "Secret values replaced by hashes."},
        "secrets": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "Secret name -> sha256 of its value."},
        "manifests": {"type": "object", "additionalProperties": {"type": "string"}},
        "images": {"type": "object", "additionalProperties": {"type": "string"}},
        "backups": {"type": "object", "description": "Service -> the data dump this revision "
                    "took before changing it (blob, object, bytes, sha256, when)."},
        "restore": {"type": ["object", "null"],
                    "description": "What a `--restore-data` rollback loaded."}}}]},
    "Diff": {"type": "object", "properties": {
        "from": {"type": "integer"}, "to": {"type": "integer"},
        "manifests": {"type": "object", "additionalProperties": {"type": "string"},
                      "description": "File name -> unified diff."},
        "config": {"type": "array", "items": {"type": "object", "properties": {
            "path": {"type": "string"}, "from": {}, "to": {}}}},
        "images": {"type": "array", "items": {"type": "object"}},
        "secrets_changed": {"type": "array", "items": {"type": "string"}}}},
    "Audit": {"type": "object", "properties": {"entries": {"type": "array", "items": {
        "type": "object", "properties": {
            "at": {"type": "string"}, "who": {"type": "string"},
            "remote": {"type": ["string", "null"]}, "action": {"type": "string"},
            "target": {"type": ["string", "null"]}, "outcome": {"type": "string"},
            "detail": {"type": "string"}, "operation": {"type": ["string", "null"]}}}}}},
    "Envelope": {"type": "object", "required": ["events"], "properties": {
        "events": {"type": "array", "items": {
            "type": "object", "required": ["action", "target"], "properties": {
                "id": {"type": "string"}, "action": {"type": "string"},
                "timestamp": {"type": "string"},
                "target": {"type": "object", "required": ["repository"], "properties": {
                    "mediaType": {"type": "string"}, "repository": {"type": "string"},
                    "tag": {"type": "string"}, "digest": {"type": "string"},
                    "url": {"type": "string"}}},
                "request": {"type": "object", "properties": {
                    "host": {"type": "string"}, "addr": {"type": "string"},
                    "method": {"type": "string"}}}}}}}},
    "WebhookResult": {"type": "object", "properties": {"events": {"type": "array", "items": {
        "type": "object", "properties": {
            "id": {"type": "string"}, "event": {"type": "string"},
            "result": {"enum": ["queued", "ignored"]}, "reason": {"type": "string"},
            "operation": {"type": "string"}}}}}},
}


def build_spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Commander", "version": "1",
                 "description": "The platform's orchestration agent. Every change goes "
                                "through heliostat's plan/apply/ledger path."},
        "security": [{"bearerToken": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer",
                                "description": "The platform's secret commander-token."},
                "webhookSecret": {"type": "apiKey", "in": "header",
                                  "name": "X-Heliostat-Webhook-Secret",
                                  "description": "The platform's commander-webhook-secret."},
            },
            "schemas": SCHEMAS,
        },
    }
