"""Who is asking: a signed-in browser (session cookie) or an API client (bearer token).

`load()` runs before every request and leaves the answer in `g.principal` (None when
anonymous). Views declare what they need with `@signed_in()` or `@signed_in(admin=True)`;
an unsafe request from a browser must also carry the CSRF token of its session
(`check_csrf()`), which a bearer token does not need.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from flask import g, request

from pilot import api_tokens, csrf, sessions
from pilot.accounts import User
from pilot.runtime import runtime
from pilot.sessions import Session

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
F = TypeVar("F", bound=Callable[..., Any])


class NotSignedIn(Exception):
    """No valid session or token; `expired` when the browser had a session that ended."""

    def __init__(self, expired: bool = False, bad_token: bool = False) -> None:
        super().__init__("not signed in")
        self.expired = expired
        self.bad_token = bad_token


class NotAllowed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    user: User
    via: Literal["session", "token"]
    session: Session | None = None
    token_id: int | None = None


def load() -> None:
    """Set g.principal (and g.session_ended / g.bad_token for the error pages)."""
    g.principal, g.session_ended, g.bad_token = None, False, False
    pilot = runtime()
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        with pilot.database.connect() as conn:
            found = api_tokens.authenticate(conn, presented.strip())
        if found is None:
            g.bad_token = True
        else:
            g.principal = Principal(found.user, "token", token_id=found.token_id)
        return
    cookie = request.cookies.get(sessions.COOKIE)
    if not cookie:
        return
    session_id = pilot.sessions.session_id(cookie)
    session = None
    if session_id is not None:
        with pilot.database.connect() as conn:
            session = sessions.find(conn, session_id)
    if session is None:
        g.session_ended = True
    else:
        g.principal = Principal(session.user, "session", session=session)


def principal() -> Principal | None:
    return g.get("principal")


def current() -> Principal:
    """The principal of a view declared `@signed_in`."""
    found = principal()
    assert found is not None
    return found


def csrf_token() -> str | None:
    """The token this browser's forms carry (None for API clients and anonymous ones)."""
    found = principal()
    if found is None or found.session is None:
        return None
    return runtime().csrf.session_token(found.session.id)


def check_csrf() -> None:
    """Refuse an unsafe request of a signed-in browser without its CSRF token."""
    found = principal()
    if request.method not in UNSAFE or found is None or found.via != "session":
        return
    presented = request.headers.get(csrf.HEADER) or request.form.get(csrf.FIELD)
    if not csrf.matches(csrf_token(), presented):
        raise CsrfFailed()


def signed_in(admin: bool = False) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            found = principal()
            if found is None:
                raise NotSignedIn(expired=bool(g.get("session_ended")),
                                  bad_token=bool(g.get("bad_token")))
            if admin and not found.user.is_admin:
                raise NotAllowed(f"{found.user.username} is a viewer; only an admin can do "
                                 "this")
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate
