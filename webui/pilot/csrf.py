"""CSRF tokens: every form carries one, every unsafe request by a browser presents one.

A signed-in browser's token is derived from its session id (HMAC with the secret key),
so it needs no storage and changes with each login. The login form, before there is
a session, gets its token from a nonce in a short-lived signed cookie of its own.
API clients using a bearer token need none: a browser never sends that header by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

LOGIN_COOKIE = "pilot_login"
LOGIN_FORM_SECONDS = 24 * 3600
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


class Csrf:
    def __init__(self, secret_key: str) -> None:
        self._key = secret_key.encode("utf-8")
        self._login = URLSafeTimedSerializer(secret_key, salt="pilot-login-form")

    def session_token(self, session_id: str) -> str:
        return self._derive(b"session:" + session_id.encode("utf-8"))

    def new_login_nonce(self) -> tuple[str, str]:
        """(the login cookie's value, the token its form carries)."""
        nonce = secrets.token_urlsafe(24)
        return self._login.dumps(nonce), self._derive(b"login:" + nonce.encode())

    def login_token(self, cookie: str | None) -> str | None:
        """The token the login form should carry, if its cookie is genuine and fresh."""
        if not cookie:
            return None
        try:
            nonce = self._login.loads(cookie, max_age=LOGIN_FORM_SECONDS)
        except BadSignature:
            return None
        return self._derive(b"login:" + nonce.encode()) if isinstance(nonce, str) else None

    def _derive(self, message: bytes) -> str:
        return hmac.new(self._key, b"csrf:" + message, hashlib.sha256).hexdigest()


def matches(expected: str | None, presented: str | None) -> bool:
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace"))
