"""Whether a cookie is sent with the Secure attribute.

`auto` (the default): Secure when the request reached Pilot over https — directly, or
as the trusted proxy's X-Forwarded-Proto says (ProxyFix applies it before this runs).
A browser keeps no Secure cookie it received over plain http, so forcing Secure on the
platform's plain-http gateway would make signing in impossible there; behind a TLS
terminator that does not say so, set PILOT_COOKIE_SECURE=always.
"""

from __future__ import annotations

from flask import Request

from pilot.settings import CookieSecure


def secure(request: Request, mode: CookieSecure) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    return request.is_secure


def flags(request: Request, mode: CookieSecure) -> dict[str, bool | str]:
    """The attributes of every cookie Pilot sets (or deletes)."""
    return {"secure": secure(request, mode), "httponly": True, "samesite": "Lax"}
