"""Clickstream apps: list them, make one (its first write key shown once), add a write key
and revoke one (after a confirmation) to rotate, and the snippets that send an app's
events to this platform. Everybody sees them; only an admin changes them."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, redirect, render_template, request

from clickstream.storage import WriteKey
from pilot.clickstream_apps import (
    KEY_PLACEHOLDER,
    NAME_MAX,
    NOT_ENABLED,
    RATE_LIMIT_MAX,
    AppKeys,
    AppNameTaken,
    EventApi,
    name_problem,
)
from pilot.clickstream_destinations import KIND_TITLES
from pilot.forms import Form
from pilot.identity import current, signed_in
from pilot.runtime import runtime

log = logging.getLogger(__name__)
pages = Blueprint("apps", __name__)
NOTICES = {"revoked": "The write key was revoked: events sent with it are refused.",
           "destination-deleted": "The destination was deleted: the app's events are not "
                                  "delivered to it any more."}


@pages.get("/apps")
@signed_in()
def listing() -> Response:
    if not runtime().clickstream.enabled:
        # A state of the platform, not a missing page: it says what to do instead.
        return _page("apps.html", 200, apps=[], form=Form(), disabled=NOT_ENABLED)
    return _listing(Form(), 200, NOTICES.get(request.args.get("notice", "")))


@pages.post("/apps")
@signed_in(admin=True)
def create() -> Response:
    form = Form()
    name = form.text("name", NAME_MAX, check=name_problem)
    rate_limit = form.whole_number("rate_limit", 1, RATE_LIMIT_MAX)
    if not form.ok:
        return _listing(form, 400)
    try:
        found, key = runtime().clickstream.create(name, rate_limit)
    except AppNameTaken:
        form.error("name", "there is already an app of that name")
        return _listing(form, 409)
    log.info("clickstream app created", extra={"username": current().user.username,
                                               "app_id": found.app.id,
                                               "remote": request.remote_addr})
    return _key_shown_once(found, found.keys[0], key, created=True)


@pages.get("/apps/<int:app_id>")
@signed_in()
def show(app_id: int) -> Response:
    found = runtime().clickstream.app(app_id)
    _, destinations = runtime().destinations.listing(app_id)
    return _page("app.html", 200, app=found, api=event_api(), snippet_key=KEY_PLACEHOLDER,
                 destinations=destinations, kinds=KIND_TITLES,
                 notice=NOTICES.get(request.args.get("notice", "")))


@pages.post("/apps/<int:app_id>/keys")
@signed_in(admin=True)
def add_key(app_id: int) -> Response:
    found, entry, key = runtime().clickstream.add_key(app_id)
    log.info("write key added", extra={"username": current().user.username, "app_id": app_id,
                                       "key_id": entry.id, "remote": request.remote_addr})
    return _key_shown_once(found, entry, key, created=False)


@pages.get("/apps/<int:app_id>/keys/<int:key_id>/revoke")
@signed_in(admin=True)
def confirm_revoke(app_id: int, key_id: int) -> Response:
    found = runtime().clickstream.app(app_id)
    key = found.key(key_id)
    problem = (f"Write key {key.key_prefix}… is revoked already: there is nothing left to do."
               if key.revoked else None)
    return _page("key_revoke.html", 409 if problem else 200, app=found, key=key,
                 problem=problem, others=[k for k in found.active if k.id != key_id])


@pages.post("/apps/<int:app_id>/keys/<int:key_id>/revoke")
@signed_in(admin=True)
def revoke(app_id: int, key_id: int) -> Response:
    runtime().clickstream.revoke(app_id, key_id)
    log.info("write key revoked", extra={"username": current().user.username,
                                         "app_id": app_id, "key_id": key_id,
                                         "remote": request.remote_addr})
    return redirect(f"/apps/{app_id}?notice=revoked", 303)


def event_api() -> EventApi:
    """The Event API as the browser reaches this platform: at Pilot's own origin.

    A proxy in front may pass on the host name without its port, so the origin the
    browser itself names (Origin, sent with forms; Referer, within Pilot) wins when it is
    of the same host; else the Host header (the platform's gateway keeps its port) and the
    proxy's X-Forwarded-Proto.
    """
    ours = urlsplit(f"//{request.host}").hostname
    for header in ("Origin", "Referer"):
        seen = urlsplit(request.headers.get(header, ""))
        try:
            port = seen.port
        except ValueError:  # not a port number: not a browser's origin
            continue
        if seen.scheme in ("http", "https") and seen.hostname and seen.hostname == ours:
            host = f"[{seen.hostname}]" if ":" in seen.hostname else seen.hostname
            return EventApi(seen.scheme, f"{host}:{port}" if port else host)
    return EventApi(request.scheme, request.host)


def _key_shown_once(found: AppKeys, entry: WriteKey, key: str, created: bool) -> Response:
    others = [k for k in found.active if k.id != entry.id]
    return _page("write_key.html", 201, app=found, entry=entry, write_key=key,
                 created=created, others=others, api=event_api(), snippet_key=key)


def _listing(form: Form, status: int, notice: str | None = None) -> Response:
    return _page("apps.html", status, apps=runtime().clickstream.apps(), form=form,
                 notice=notice, disabled=None)


def _page(template: str, status: int, **context: Any) -> Response:
    return Response(render_template(template, **context), status, mimetype="text/html")
