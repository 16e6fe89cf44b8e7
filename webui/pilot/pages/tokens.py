"""API tokens: make one (shown once), list them, revoke one. Everybody manages their own;
an admin sees and can revoke everybody's."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, redirect, render_template, request

from pilot import api_tokens
from pilot.accounts import ROLES, Role, User
from pilot.database import Connection
from pilot.forms import Form
from pilot.identity import current, signed_in
from pilot.runtime import runtime

log = logging.getLogger(__name__)
pages = Blueprint("tokens", __name__)
NOTICES = {"revoked": "The token was revoked: it no longer works."}


@pages.get("/tokens")
@signed_in()
def listing() -> Response:
    return _listing(Form(), 200, notice=NOTICES.get(request.args.get("notice", "")))


@pages.post("/tokens")
@signed_in()
def create() -> Response:
    me = current().user
    form = Form()
    name = form.text("name", api_tokens.NAME_MAX)
    role = form.choice("role", allowed_roles(me), "viewer")
    days = form.whole_number("expires_in_days", 1, api_tokens.MAX_DAYS)
    if not form.ok:
        return _listing(form, 400)
    with runtime().database.connect() as conn:
        token, info = api_tokens.create(conn, me, name, role_of(role), days)
    log.info("API token created", extra={"username": me.username, "token_id": info.id,
                                         "role": info.role, "remote": request.remote_addr})
    return Response(render_template("token_created.html", token=token, info=info),
                    201, mimetype="text/html")


@pages.post("/tokens/<int:token_id>/revoke")
@signed_in()
def revoke(token_id: int) -> Response:
    me = current().user
    with runtime().database.connect() as conn:
        revoke_for(conn, me, token_id)
    log.info("API token revoked", extra={"username": me.username, "token_id": token_id,
                                         "remote": request.remote_addr})
    return redirect("/tokens?notice=revoked", 303)


def revoke_for(conn: Connection, me: User, token_id: int) -> None:
    """Revoke the token if `me` may (its owner, or an admin); 404 otherwise, so nobody
    learns which ids exist."""
    owner = api_tokens.owner_id(conn, token_id)
    if owner is None or (owner != me.id and not me.is_admin):
        abort(404, f"There is no token {token_id} of yours.")
    api_tokens.revoke(conn, token_id)


def allowed_roles(user: User) -> tuple[Role, ...]:
    """A token can have its owner's role or less."""
    return ROLES if user.is_admin else ("viewer",)


def role_of(value: str) -> Role:
    return "admin" if value == "admin" else "viewer"


def _listing(form: Form, status: int, notice: str | None = None) -> Response:
    me = current().user
    with runtime().database.connect() as conn:
        tokens = api_tokens.listing(conn, None if me.is_admin else me)
    page = render_template("tokens.html", tokens=tokens, form=form, notice=notice,
                           roles=allowed_roles(me))
    return Response(page, status, mimetype="text/html")
