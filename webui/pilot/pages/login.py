"""Signing in and out.

A login starts a new session (a new id: session fixation is prevented) and ends the
one the browser had; failures are rate-limited per account name and per address."""

from __future__ import annotations

import logging

from flask import Blueprint, Request, Response, redirect, render_template, request

from pilot import accounts, cookies, csrf, identity, metrics, passwords, sessions
from pilot.login_limits import TooManyAttempts
from pilot.runtime import runtime
from pilot.text import control_characters

log = logging.getLogger(__name__)
pages = Blueprint("login", __name__)

NOTICES = {"signed-out": "You are signed out.",
           "password-changed": "Your password was changed; sign in with the new one."}
REASONS = {"expired": "Your session has expired; sign in again."}


def safe_next(target: str | None) -> str:
    """A path on this site to go to after signing in; anything else is `/`."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or "\\" in target or any(ord(c) < 32 for c in target)):
        return "/"
    return target


@pages.get("/login")
def form() -> Response:
    if identity.principal() is not None:
        return redirect(safe_next(request.args.get("next")), 303)
    notice = NOTICES.get(request.args.get("notice", "")) or REASONS.get(
        request.args.get("reason", ""))
    return _form(200, notice=notice)


@pages.post("/login")
def submit() -> Response:
    pilot = runtime()
    username = request.form.get("username", "").strip().lower()
    password = request.form.get("password", "")
    target = safe_next(request.form.get("next"))
    expected = pilot.csrf.login_token(request.cookies.get(csrf.LOGIN_COOKIE))
    if not csrf.matches(expected, request.form.get(csrf.FIELD)):
        return _form(400, username=username, target=target,
                     error="This sign-in form has expired or did not come from Pilot. "
                           "It has been renewed: sign in again.")
    errors = {}
    if not username or len(username) > 200 or control_characters(username):
        errors["username"] = "enter your user name"
    if not password or len(password) > accounts.PASSWORD_MAX or "\0" in password:
        errors["password"] = "enter your password"
    if errors:
        return _form(400, username=username, target=target, errors=errors)
    try:
        attempt = pilot.limiter.begin(username, request.remote_addr)
    except TooManyAttempts as exc:
        metrics.LOGINS.labels("limited").inc()
        log.warning("login refused: too many failures",
                    extra={"username": username, "remote": request.remote_addr,
                           "scope": exc.scope})
        minutes = max(1, round(exc.retry_after / 60))
        answer = _form(429, username=username, target=target,
                       error=f"Too many failed sign-ins for this {exc.scope}. Try again in "
                             f"about {minutes} minute{'s' if minutes != 1 else ''}.")
        answer.headers["Retry-After"] = str(exc.retry_after)
        return answer
    with pilot.database.connect() as conn:
        found = accounts.credentials(conn, username)
    if found is None:
        passwords.burn_time(pilot.settings.password_cost)
        verified = False
    else:
        verified = passwords.verify_password(password, found.password_hash)
    if found is None or not verified:
        metrics.LOGINS.labels("failed").inc()
        log.warning("login failed", extra={"username": username, "remote": request.remote_addr})
        return _form(401, username=username, target=target,
                     error="Wrong user name or password.")
    pilot.limiter.succeeded(attempt)
    with pilot.database.connect() as conn:
        if passwords.needs_rehash(found.password_hash, pilot.settings.password_cost):
            accounts.set_password(conn, found.user.id, passwords.hash_password(
                password, pilot.settings.password_cost))
        previous = identity.principal()
        if previous is not None and previous.session is not None:
            sessions.end(conn, previous.session.id)
        session = sessions.start(conn, found.user, pilot.settings.session_hours,
                                 request.remote_addr, request.headers.get("User-Agent"))
    metrics.LOGINS.labels("ok").inc()
    log.info("login", extra={"username": username, "remote": request.remote_addr})
    answer = redirect(target, 303)
    answer.set_cookie(sessions.COOKIE, pilot.sessions.cookie_value(session.id),
                      max_age=pilot.settings.session_hours * 3600, path="/",
                      **_cookie_flags(request))
    answer.delete_cookie(csrf.LOGIN_COOKIE, path="/login", **_cookie_flags(request))
    return answer


@pages.post("/logout")
def logout() -> Response:
    found = identity.principal()
    if found is not None and found.session is not None:
        with runtime().database.connect() as conn:
            sessions.end(conn, found.session.id)
        log.info("logout", extra={"username": found.user.username,
                                  "remote": request.remote_addr})
    answer = redirect("/login?notice=signed-out", 303)
    answer.delete_cookie(sessions.COOKIE, path="/", **_cookie_flags(request))
    return answer


def _form(status: int, username: str = "", target: str | None = None, error: str | None = None,
          notice: str | None = None, errors: dict[str, str] | None = None) -> Response:
    cookie, token = runtime().csrf.new_login_nonce()
    page = render_template("login.html", username=username, error=error, notice=notice,
                           errors=errors or {}, login_csrf=token,
                           next=target or safe_next(request.args.get("next")))
    answer = Response(page, status, mimetype="text/html")
    answer.set_cookie(csrf.LOGIN_COOKIE, cookie, max_age=csrf.LOGIN_FORM_SECONDS,
                      path="/login", **_cookie_flags(request))
    return answer


def _cookie_flags(req: Request) -> dict[str, bool | str]:
    return cookies.flags(req, runtime().settings.cookie_secure)
