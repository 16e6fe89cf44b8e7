"""Commander's HTTP API: status, releases, image updates, rollbacks, operations, audit,
and the registry's webhook. `create_app()` is the WSGI app gunicorn serves.

Every change request is answered at once (202, with an operation id); the worker runs
it later through heliostat's one change path. Bad input is a 4xx JSON error, never a
traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.exceptions import HTTPException

from commander import metrics, releases
from commander.agent import Commander
from commander.openapi import build_spec
from commander.operations import Operation, OperationStore
from commander.platform_state import Refused, describe_image
from commander.pushes import REGISTRY_IDENTITY, handle_events
from commander.registry_events import MalformedEnvelope, parse_envelope
from commander.settings import Settings
from heliostat.ledger_lock import LedgerError
from heliostat.problems import InvalidInput
from heliostat.service_status import platform_summary

__all__ = ["Commander", "create_app"]

log = logging.getLogger(__name__)

TOKEN_IDENTITY = "token:commander-token"  # who the one API token stands for in the audit
WEBHOOK_HEADER = "X-Heliostat-Webhook-Secret"
MAX_BODY = 1024 * 1024  # a notification envelope of many events stays far below it
AUDIT_LIMIT = 1000


def create_app(settings: Settings | None = None, start_worker: bool = True) -> Flask:
    app = Flask("commander")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    commander = Commander(settings or Settings.from_env(), start_worker)
    app.extensions["commander"] = commander
    platform, store, audit = commander.platform, commander.store, commander.audit
    token = commander.settings.token.encode()
    webhook_secret = commander.settings.webhook_secret.encode()

    @app.before_request
    def authenticate() -> Response | None:
        g.who = None
        if not request.path.startswith("/api/"):
            return None
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(),
                                                                  token):
            if request.method == "POST":
                audit.append(who="unauthenticated", remote=request.remote_addr,
                             action=f"{request.method} {request.path}", outcome="refused",
                             detail="missing or wrong bearer token")
            return _error(401, "missing or wrong bearer token (Authorization: Bearer <token>, "
                               "the platform's secret commander-token)",
                          {"WWW-Authenticate": 'Bearer realm="commander"'})
        g.who = TOKEN_IDENTITY
        return None

    @app.after_request
    def count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.REQUESTS.labels(request.method, rule, str(response.status_code)).inc()
        return response

    @app.errorhandler(Refused)
    def refused(exc: Refused) -> Response:
        return _error(exc.status, exc.message)

    @app.errorhandler(InvalidInput)
    def invalid(exc: InvalidInput) -> Response:
        return _error(400, f"the platform's configuration would be invalid: {exc}")

    @app.errorhandler(LedgerError)
    def ledger_unreadable(exc: LedgerError) -> Response:
        log.warning("the ledger cannot be read: %s", exc)
        return _error(503, f"the platform's ledger cannot be read: {exc}")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        allow = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
        return _error(exc.code or 500, exc.description or exc.name, allow)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return _error(500, f"internal error ({type(exc).__name__}); Commander's log has it")

    @app.get("/health")
    def health() -> Response:
        if not commander.healthy():
            return _json({"status": "unhealthy", "reason": "the worker thread stopped"}, 503)
        return _json({"status": "ok", "platform": platform.name})

    @app.get("/metrics")
    def metrics_view() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return _json(build_spec())

    @app.get("/api/v1/status")
    def status() -> Response:
        ledger = platform.ledger
        source = ledger.last_deployed() or ledger.pending()
        if source is None:
            summary: dict[str, Any] = {"platform": platform.name, "revision": None,
                                       "pending": None, "services": [], "modules": []}
        else:
            config = platform.config(source.config, f"revision {source.number}")
            target = platform.target(config)
            summary = _engine_call(lambda: platform_summary(platform.name, target.driver,
                                                            ledger))
            modules = {s.name: s.module for s in target.model.services}
            for row in summary["services"]:
                row["module"] = modules.get(row["service"])
                row["image_digest"] = _engine_call(lambda r=row: _repo_digest(target, r))
            summary["modules"] = config.enabled_modules()
        summary["operations"] = [op.to_json() for op in commander.queue.pending()]
        return _json(summary)

    @app.get("/api/v1/releases")
    def release_list() -> Response:
        return _json({"releases": [releases.summary(r) for r in platform.ledger.revisions()]})

    @app.get("/api/v1/releases/<int:number>")
    def release(number: int) -> Response:
        return _json(releases.detail(platform.revision(number)))

    @app.get("/api/v1/releases/<int:number>/diff/<int:other>")
    def release_diff(number: int, other: int) -> Response:
        return _json(releases.diff(platform.revision(number), platform.revision(other)))

    @app.post("/api/v1/services/<name>/image")
    def image_update(name: str) -> Response:
        body = _body({"image": str})
        image = body["image"]
        deployed = platform.deployed()
        services = platform.members(name, deployed.config)
        description = describe_image(name, image)
        platform.image_change_config(services, image, description)  # refused now if bad
        operation = commander.queue_new("image", description, g.who, request.remote_addr,
                                        services=services, image=image)
        audit.append(who=g.who, remote=request.remote_addr, action="image",
                     target=description, outcome="accepted", operation=operation.id,
                     detail=f"services: {', '.join(services)}")
        return _accepted(operation)

    @app.post("/api/v1/rollback")
    def rollback() -> Response:
        number = _body({"revision": int})["revision"]
        chosen = platform.revision(number)
        if chosen.status not in ("deployed", "superseded") or not chosen.manifests:
            raise Refused(409, f"revision {number} was never deployed ({chosen.status}); "
                               "roll back to one that was (GET /api/v1/releases)")
        description = f"commander: rollback to {number}"
        operation = commander.queue_new("rollback", description, g.who, request.remote_addr,
                                        revision=number)
        audit.append(who=g.who, remote=request.remote_addr, action="rollback",
                     target=description, outcome="accepted", operation=operation.id)
        return _accepted(operation)

    @app.get("/api/v1/operations")
    def operation_list() -> Response:
        return _json({"operations": [op.to_json() for op in store.all()]})

    @app.get("/api/v1/operations/<operation_id>")
    def operation(operation_id: str) -> Response:
        found = _operation(store, operation_id)
        return _json({**found.to_json(), "events": store.events(operation_id)})

    @app.get("/api/v1/operations/<operation_id>/events")
    def operation_events(operation_id: str) -> Response:
        _operation(store, operation_id)
        last = request.headers.get("Last-Event-ID", "")
        start = int(last) + 1 if _whole_number(last) else 0

        def stream() -> Any:
            for item in store.follow(operation_id, start):
                if item is None:
                    yield ": keep-alive\n\n"
                    continue
                index, line = item
                yield f"id: {index}\nevent: progress\ndata: {json.dumps({'line': line})}\n\n"
            final = store.get(operation_id)
            assert final is not None
            yield f"event: end\ndata: {json.dumps(final.to_json())}\n\n"

        return Response(stream(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/v1/audit")
    def audit_view() -> Response:
        raw = request.args.get("limit", str(AUDIT_LIMIT))
        if not _whole_number(raw) or not 1 <= int(raw) <= 100_000:
            raise Refused(400, f"limit must be a whole number from 1 to 100000, not {raw!r}")
        return _json({"entries": audit.entries(int(raw))})

    @app.post("/webhooks/registry")
    def registry_webhook() -> Response:
        presented = request.headers.get(WEBHOOK_HEADER, "").encode()
        if not hmac.compare_digest(presented, webhook_secret):
            audit.append(who=REGISTRY_IDENTITY, remote=request.remote_addr,
                         action="registry notification", outcome="refused",
                         detail=f"missing or wrong {WEBHOOK_HEADER} header")
            return _error(401, f"missing or wrong {WEBHOOK_HEADER} header")
        try:
            events = parse_envelope(json.loads(request.get_data()))
        except (ValueError, MalformedEnvelope) as exc:
            # json.JSONDecodeError and UnicodeDecodeError are ValueErrors too
            raise Refused(400, f"not a registry notification envelope: {exc}") from None
        results = handle_events(commander, events, request.remote_addr)
        return _json({"events": results}, 202)

    return app


def _body(fields: dict[str, type]) -> dict[str, Any]:
    """The request's JSON object, with each of `fields` present and of its type."""
    try:
        body = json.loads(request.get_data() or b"")
    except ValueError:
        raise Refused(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    for name, kind in fields.items():
        value = body.get(name)
        # bool is an int in Python, never a revision number
        if not isinstance(value, kind) or isinstance(value, bool):
            raise Refused(400, f"`{name}` is required and must be a "
                               f"{'string' if kind is str else 'whole number'}")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise Refused(400, f"unknown field(s): {', '.join(unknown)}")
    return body


def _whole_number(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes `²`, which int() refuses."""
    return 0 < len(text) <= 9 and text.isascii() and text.isdigit()


def _operation(store: OperationStore, operation_id: str) -> Operation:
    found = store.get(operation_id)
    if found is None:
        raise Refused(404, f"no operation {operation_id}")
    return found


def _accepted(operation: Operation) -> Response:
    location = f"/api/v1/operations/{operation.id}"
    return _json({"operation": operation.id, "state": operation.state,
                  "description": operation.description, "url": location,
                  "events": f"{location}/events"}, 202, {"Location": location})


def _engine_call(call: Any) -> Any:
    """The engine's and the driver's errors are the target's, not Commander's bugs."""
    from heliostat.drivers.compose_errors import EngineError
    from heliostat.drivers.compose_objects import ComposeFileError
    from heliostat.ledger_lock import LedgerError

    try:
        return call()
    except (EngineError, ComposeFileError, LedgerError) as exc:
        raise Refused(503, f"cannot read the platform's state from its target: {exc}") from None


def _repo_digest(target: Any, row: dict[str, Any]) -> str | None:
    """The registry digest of the image a service runs, when the engine knows one (images
    loaded from a bundle have none; pulled ones do)."""
    import docker.errors

    if not row.get("image_id"):
        return None
    try:
        image = target.driver.engine.client.images.get(row["image_id"])
    except docker.errors.DockerException:
        return None
    digests = image.attrs.get("RepoDigests") or []
    return digests[0].rpartition("@")[2] if digests else None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, headers,
                    mimetype="application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json({"error": message, "status": status}, status, headers)
