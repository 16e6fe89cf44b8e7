"""Pilot's WSGI app: `create_app()` is what gunicorn serves.

At start it waits for Postgres, migrates Pilot's schema and creates the first account
(`admin`, from PILOT_ADMIN_PASSWORD_FILE) if there is none; then it answers pages,
the JSON API under /api/v1, /health and /metrics.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from pilot import errors, filters, identity, metrics
from pilot.api_v1 import api
from pilot.migrate import prepare_database
from pilot.pages import (
    account,
    apps,
    charts,
    destinations,
    events,
    login,
    overview,
    releases,
    tokens,
    users,
)
from pilot.passwords import hash_password
from pilot.runtime import Runtime
from pilot.service import service
from pilot.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # forms and API requests are small; more is refused with 413
_QUIET = ("/health", "/metrics", "/static/")
_SECURITY_HEADERS = {
    # Everything comes from Pilot itself: no CDN, nothing fetched from elsewhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    pilot = Runtime.build(settings)
    pilot.database.wait_until_up(settings.startup_timeout)
    admin_hash = (partial(hash_password, settings.admin_password, settings.password_cost)
                  if settings.admin_password else None)
    if admin_hash is None:
        log.warning("PILOT_ADMIN_PASSWORD_FILE is not set: no first account is created")
    prepare_database(pilot.database, admin_hash)

    app = Flask("pilot")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, SEND_FILE_MAX_AGE_DEFAULT=3600,
                      TEMPLATES_AUTO_RELOAD=False)
    app.extensions["pilot"] = pilot
    if settings.trusted_proxies:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_prefix=n)  # type: ignore[method-assign]

    for blueprint in (login.pages, overview.pages, releases.pages, apps.pages, charts.pages,
                      destinations.pages, events.pages, tokens.pages, users.pages,
                      account.pages, api, service):
        app.register_blueprint(blueprint)
    errors.register(app)
    filters.register(app)

    @app.before_request
    def who_is_asking() -> None:
        g.started = time.monotonic()
        if request.path.startswith(_QUIET):
            return
        identity.load()
        # Unrouted requests get their 404/405; the login form has its own token.
        if request.routing_exception is None and request.endpoint != "login.submit":
            identity.check_csrf()

    @app.context_processor
    def page_context() -> dict[str, object]:
        return {"me": identity.principal(), "csrf_token": identity.csrf_token()}

    @app.after_request
    def finish(response: Response) -> Response:
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        elapsed = time.monotonic() - g.get("started", time.monotonic())
        metrics.REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        metrics.LATENCY.labels(route).observe(elapsed)
        if not request.path.startswith(_QUIET):
            found = identity.principal()
            log.info("request", extra={
                "method": request.method, "path": request.path, "status": response.status_code,
                "ms": round(elapsed * 1000, 1), "remote": request.remote_addr,
                "user": found.user.username if found else None})
        return response

    return app
