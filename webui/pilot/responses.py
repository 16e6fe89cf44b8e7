"""Answers in the two forms Pilot speaks: JSON under /api/ (and for clients that ask for
it), HTML pages everywhere else; errors likewise, never a traceback."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, render_template, request

API_PREFIX = "/api/"


def wants_json() -> bool:
    if request.path.startswith(API_PREFIX) or request.path in ("/health", "/openapi.json"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and not request.accept_mimetypes["text/html"]


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), status, headers,
                    mimetype="application/json")


def error_response(status: int, message: str, headers: dict[str, str] | None = None,
                   title: str | None = None) -> Response:
    if wants_json():
        return json_response({"error": message, "status": status}, status, headers)
    page = render_template("error.html", status=status, message=message,
                           title=title or _TITLES.get(status, "Error"))
    return Response(page, status, headers, mimetype="text/html")


_TITLES = {400: "Bad request", 401: "Sign in again", 403: "Not allowed", 404: "Not found",
           405: "Method not allowed", 409: "Conflict", 413: "Too large",
           415: "Unsupported media type", 429: "Too many attempts", 500: "Internal error",
           502: "Commander failed", 503: "Unavailable"}
