"""/health, /metrics, /openapi.json, JSON logs, and everything the pages need served by
Pilot itself (no CDN, nothing fetched from elsewhere)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from pilot_testing import sign_in

import pilot
from clickstream.jsonlog import JsonFormatter

PACKAGE = Path(pilot.__file__).parent


def test_health_says_what_is_up(client):
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok",
                                 "checks": {"postgres": "ok", "commander": "ok"}}


def test_metrics_count_requests_and_logins(client):
    client.get("/health")
    sign_in(client, password="wrong-password")
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'pilot_http_requests_total\{method="GET",route="/health",status="200"\} '
                     r"[1-9]", text)
    assert re.search(r'pilot_logins_total\{outcome="failed"\} [1-9]', text)
    assert "pilot_commander_requests_total" in text
    assert "pilot_http_request_seconds_bucket" in text
    # Through the gateway (which routes all of `/` to Pilot), there are none to see.
    assert client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.7"}
                      ).status_code == 404


def test_openapi_describes_every_api_route(app, client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule in ("/health", "/metrics",
                                                          "/openapi.json"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert routes == documented


def test_request_logs_are_json_lines_with_the_user(admin, caplog):
    caplog.set_level(logging.INFO, logger="pilot")
    admin.get("/releases")
    record = next(r for r in caplog.records if r.getMessage() == "request")
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["method"], line["path"], line["status"],
            line["user"]) == ("info", "pilot.app", "GET", "/releases", 200, "admin")
    assert line["ts"].endswith("Z") and isinstance(line["ms"], float)


def test_pages_have_strict_headers_and_no_cache(admin):
    answer = admin.get("/")
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Cache-Control"] == "no-store"
    css = admin.get("/static/pilot.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "no-store" not in css.headers.get("Cache-Control", "")
    assert admin.get("/static/operation.js").status_code == 200


def test_every_asset_is_pilots_own():
    """No page or stylesheet refers to anything outside Pilot: no CDN, no web font."""
    outside = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//|@import|url\(\s*["']?"""
                         r"""(?:https?:)?//""")
    for path in [*PACKAGE.glob("templates/*.html"), *PACKAGE.glob("static/*")]:
        assert not outside.search(path.read_text()), path
    # No inline scripts or handlers: the CSP (script-src 'self') would block them. A JSON
    # data block is not run, so the CSP lets it be.
    for path in PACKAGE.glob("templates/*.html"):
        text = path.read_text()
        assert not re.search(r'<script(?![^>]*\b(?:src=|type="application/json"))', text), path
        assert not re.search(r"\son[a-z]+=", text), path
