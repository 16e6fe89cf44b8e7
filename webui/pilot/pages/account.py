"""Your own account: change your password (which signs out your other sessions)."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, redirect, render_template, request

from pilot import accounts, metrics, passwords, sessions
from pilot.forms import Form
from pilot.identity import current, signed_in
from pilot.login_limits import TooManyAttempts
from pilot.runtime import runtime

log = logging.getLogger(__name__)
pages = Blueprint("account", __name__)
NOTICES = {"password-changed": "Your password was changed; your other sessions were "
                               "signed out."}


@pages.get("/account")
@signed_in()
def show() -> Response:
    return _page(Form(), 200, NOTICES.get(request.args.get("notice", "")))


@pages.post("/account/password")
@signed_in()
def change_password() -> Response:
    pilot, me = runtime(), current()
    form = Form()
    old = form.text("current_password", accounts.PASSWORD_MAX, strip=False)
    new = form.text("new_password", accounts.PASSWORD_MAX, check=accounts.password_problem,
                    strip=False)
    again = form.text("confirm_password", accounts.PASSWORD_MAX, strip=False)
    if new and again and new != again:
        form.error("confirm_password", "does not match the new password")
    if not form.ok:
        return _page(form, 400)
    try:
        attempt = pilot.limiter.begin(me.user.username, request.remote_addr)
    except TooManyAttempts as exc:
        form.error("current_password", "too many wrong passwords; try again in "
                                       f"{max(1, round(exc.retry_after / 60))} minute(s)")
        answer = _page(form, 429)
        answer.headers["Retry-After"] = str(exc.retry_after)
        return answer
    with pilot.database.connect() as conn:
        found = accounts.credentials(conn, me.user.username)
    if found is None or not passwords.verify_password(old, found.password_hash):
        metrics.LOGINS.labels("failed").inc()
        form.error("current_password", "wrong password")
        return _page(form, 401)
    pilot.limiter.succeeded(attempt)
    hashed = passwords.hash_password(new, pilot.settings.password_cost)
    with pilot.database.connect() as conn:
        accounts.set_password(conn, me.user.id, hashed)
        sessions.end_all(conn, me.user.id, keep=me.session.id if me.session else None)
    log.info("password changed", extra={"username": me.user.username,
                                        "remote": request.remote_addr})
    return redirect("/account?notice=password-changed", 303)


def _page(form: Form, status: int, notice: str | None = None) -> Response:
    return Response(render_template("account.html", form=form, notice=notice), status,
                    mimetype="text/html")
