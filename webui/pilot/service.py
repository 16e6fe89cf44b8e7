"""What the platform asks of every service: /health, /metrics; and /openapi.json."""

from __future__ import annotations

from flask import Blueprint, Response, abort, request

from pilot import metrics
from pilot.openapi import build_spec
from pilot.responses import json_response
from pilot.runtime import runtime

service = Blueprint("service", __name__)


@service.get("/health")
def health() -> Response:
    """200 while Pilot can serve (its database answers), with what is down besides;
    503 when it cannot."""
    pilot = runtime()
    database = pilot.database.ping()
    commander = pilot.commander.health()
    checks = {"postgres": database or "ok", "commander": commander or "ok"}
    if pilot.clickstream.enabled:
        # Only the apps pages need it: down, Pilot is degraded, not unavailable.
        checks["clickstream"] = pilot.clickstream.ping() or "ok"
        if pilot.live_events.enabled:  # the live event debugger's
            checks["redis"] = pilot.live_events.ping() or "ok"
    if pilot.prometheus.enabled:  # the charts'
        checks["prometheus"] = pilot.prometheus.health() or "ok"
    if database is not None:
        return json_response({"status": "unavailable", "checks": checks}, 503)
    degraded = any(value != "ok" for value in checks.values())
    return json_response({"status": "degraded" if degraded else "ok", "checks": checks})


@service.get("/metrics")
def metrics_view() -> Response:
    """For Prometheus, which scrapes Pilot directly; not through the gateway (which routes
    all of `/` here and says so with X-Forwarded-For)."""
    if _proxied():
        abort(404)
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


@service.get("/openapi.json")
def openapi() -> Response:
    return json_response(build_spec())


def _proxied() -> bool:
    original = request.environ.get("werkzeug.proxy_fix.orig", {})
    return bool(original.get("HTTP_X_FORWARDED_FOR") or request.headers.get("X-Forwarded-For"))
