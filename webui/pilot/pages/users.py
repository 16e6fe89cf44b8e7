"""Accounts (admins only): who can sign in, with which role; add one, delete one."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, redirect, render_template, request

from pilot import accounts, passwords
from pilot.accounts import ROLES
from pilot.forms import Form
from pilot.identity import current, signed_in
from pilot.pages.tokens import role_of
from pilot.runtime import runtime

log = logging.getLogger(__name__)
pages = Blueprint("users", __name__)
NOTICES = {"created": "The account was created.", "deleted": "The account was deleted."}


@pages.get("/users")
@signed_in(admin=True)
def listing() -> Response:
    return _listing(Form(), 200, NOTICES.get(request.args.get("notice", "")))


@pages.post("/users")
@signed_in(admin=True)
def create() -> Response:
    pilot = runtime()
    form = Form()
    username = form.text("username", 63, check=accounts.username_problem)
    role = form.choice("role", ROLES, "viewer")
    password = form.text("password", accounts.PASSWORD_MAX, check=accounts.password_problem,
                         strip=False)
    if not form.ok:
        return _listing(form, 400)
    hashed = passwords.hash_password(password, pilot.settings.password_cost)
    try:
        with pilot.database.connect() as conn:
            accounts.create(conn, username, role_of(role), hashed)
    except accounts.UsernameTaken:
        form.error("username", "there is already an account of that name")
        return _listing(form, 409)
    log.info("account created", extra={"username": current().user.username,
                                       "account": username, "role": role,
                                       "remote": request.remote_addr})
    return redirect("/users?notice=created", 303)


@pages.post("/users/<int:user_id>/delete")
@signed_in(admin=True)
def delete(user_id: int) -> Response:
    me = current().user
    if user_id == me.id:
        abort(409, "You cannot delete your own account while signed in with it.")
    try:
        with runtime().database.connect() as conn:
            deleted = accounts.delete(conn, user_id)
    except accounts.LastAdmin:
        abort(409, "That is the only admin account left; make another admin first.")
    if not deleted:
        abort(404, f"There is no account {user_id}.")
    log.info("account deleted", extra={"username": me.username, "account_id": user_id,
                                       "remote": request.remote_addr})
    return redirect("/users?notice=deleted", 303)


def _listing(form: Form, status: int, notice: str | None = None) -> Response:
    with runtime().database.connect() as conn:
        users = accounts.all_users(conn)
    page = render_template("users.html", users=users, form=form, notice=notice, roles=ROLES)
    return Response(page, status, mimetype="text/html")
