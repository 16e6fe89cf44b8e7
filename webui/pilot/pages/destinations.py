"""A clickstream app's destinations: add one (webhook, warehouse or Redis) with the
settings the clickstream workers accept, each one's page with its delivery counts,
enable and disable it, change its event filters, replay its dead letters, delete it
(after a confirmation). Everybody sees them; only an admin changes them."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request

from pilot.clickstream_destinations import (
    EVENT_NAME_MAX,
    EVENT_NAMES_MAX,
    EVENT_TYPES,
    FORM_FIELDS,
    KIND_TITLES,
    KINDS,
    NAME_MAX,
    SECRET_MAX,
    TEXT_MAX,
    DestinationNameTaken,
    ReplayUnavailable,
    filters_of,
    name_problem,
    settings_problems,
)
from pilot.forms import Form
from pilot.identity import current, signed_in
from pilot.runtime import runtime

log = logging.getLogger(__name__)
pages = Blueprint("destinations", __name__)
NOTICES = {
    "created": "The destination was added: events the app sends from now on are delivered "
               "to it.",
    "enabled": "The destination is enabled: events are delivered to it again.",
    "disabled": "The destination is disabled: its events wait in Kafka until it is enabled "
                "again.",
    "filters": "The event filters were saved: they apply to events routed from now on.",
}


@pages.get("/apps/<int:app_id>/destinations/new")
@signed_in(admin=True)
def new(app_id: int) -> Response:
    kind = request.args.get("kind", "webhook")
    if kind not in KINDS:
        abort(404, f"There is no destination kind {kind!r}; there are {', '.join(KINDS)}.")
    app, _ = runtime().destinations.listing(app_id)
    form = Form()
    form.values["enabled"] = "on"
    return _page("destination_new.html", 200, app=app, kind=kind, form=form)


@pages.post("/apps/<int:app_id>/destinations")
@signed_in(admin=True)
def create(app_id: int) -> Response:
    destinations = runtime().destinations
    app, _ = destinations.listing(app_id)  # 404 before the form is read
    form = Form()
    kind = form.choice("kind", KINDS, "webhook")
    name = form.text("name", NAME_MAX, check=name_problem)
    settings = _settings(form, kind)
    secret = None
    if kind == "webhook":
        secret = form.text("secret", SECRET_MAX, required=False, strip=False) or None
    filters = _filters(form)
    enabled = form.flag("enabled")
    if not form.ok:
        return _page("destination_new.html", 400, app=app, kind=kind, form=form)
    try:
        made = destinations.create(app_id, name, kind, settings, secret, filters, enabled)
    except DestinationNameTaken:
        form.error("name", "the app has a destination of that name already")
        return _page("destination_new.html", 409, app=app, kind=kind, form=form)
    log.info("destination created", extra={"username": current().user.username,
                                           "app_id": app_id, "destination_id": made.id,
                                           "kind": kind, "remote": request.remote_addr})
    return redirect(f"/apps/{app_id}/destinations/{made.id}?notice=created", 303)


@pages.get("/apps/<int:app_id>/destinations/<int:destination_id>")
@signed_in()
def show(app_id: int, destination_id: int) -> Response:
    notice = NOTICES.get(request.args.get("notice", ""))
    if request.args.get("notice") == "replayed":
        count = request.args.get("replayed", "")
        count = int(count) if count.isascii() and count.isdigit() else 0
        notice = (f"{count} dead letter{'' if count == 1 else 's'} sent to the destination "
                  "again; its worker delivers them after the events queued before them."
                  if count else "There were no dead letters to replay.")
    return _destination_page(app_id, destination_id, 200, notice=notice)


@pages.post("/apps/<int:app_id>/destinations/<int:destination_id>/enabled")
@signed_in(admin=True)
def set_enabled(app_id: int, destination_id: int) -> Response:
    form = Form()
    enabled = form.choice("enabled", ("yes", "no"), "yes") == "yes"
    if not form.ok:
        return _destination_page(app_id, destination_id, 400, form=form)
    runtime().destinations.change(app_id, destination_id, enabled=enabled)
    log.info("destination enabled" if enabled else "destination disabled", extra={
        "username": current().user.username, "app_id": app_id,
        "destination_id": destination_id, "remote": request.remote_addr})
    notice = "enabled" if enabled else "disabled"
    return redirect(f"/apps/{app_id}/destinations/{destination_id}?notice={notice}", 303)


@pages.post("/apps/<int:app_id>/destinations/<int:destination_id>/filters")
@signed_in(admin=True)
def set_filters(app_id: int, destination_id: int) -> Response:
    form = Form()
    filters = _filters(form)
    if not form.ok:
        return _destination_page(app_id, destination_id, 400, form=form)
    runtime().destinations.change(app_id, destination_id, filters=filters)
    log.info("destination filters changed", extra={
        "username": current().user.username, "app_id": app_id,
        "destination_id": destination_id, "remote": request.remote_addr})
    return redirect(f"/apps/{app_id}/destinations/{destination_id}?notice=filters", 303)


@pages.post("/apps/<int:app_id>/destinations/<int:destination_id>/replay")
@signed_in(admin=True)
def replay(app_id: int, destination_id: int) -> Response:
    try:
        count = runtime().destinations.replay(app_id, destination_id)
    except ReplayUnavailable as exc:
        return _destination_page(app_id, destination_id, 503, problem=str(exc),
                                 headers={"Retry-After": "5"})
    log.info("dead letters replayed", extra={
        "username": current().user.username, "app_id": app_id,
        "destination_id": destination_id, "events": count, "remote": request.remote_addr})
    return redirect(f"/apps/{app_id}/destinations/{destination_id}?notice=replayed"
                    f"&replayed={count}", 303)


@pages.get("/apps/<int:app_id>/destinations/<int:destination_id>/delete")
@signed_in(admin=True)
def confirm_delete(app_id: int, destination_id: int) -> Response:
    app, found = runtime().destinations.get(app_id, destination_id)
    return _page("destination_delete.html", 200, app=app, d=found, kinds=KIND_TITLES)


@pages.post("/apps/<int:app_id>/destinations/<int:destination_id>/delete")
@signed_in(admin=True)
def delete(app_id: int, destination_id: int) -> Response:
    runtime().destinations.delete(app_id, destination_id)
    log.info("destination deleted", extra={"username": current().user.username,
                                           "app_id": app_id, "destination_id": destination_id,
                                           "remote": request.remote_addr})
    return redirect(f"/apps/{app_id}?notice=destination-deleted", 303)


def _settings(form: Form, kind: str) -> dict[str, Any]:
    """The kind's settings that were filled in (the others keep their defaults), with
    what clickstream finds wrong with them shown next to their fields."""
    settings: dict[str, Any] = {}
    for field in FORM_FIELDS[kind]:
        if field.input in ("text", "url"):
            value: Any = form.text(field.name, TEXT_MAX, required=field.required)
        elif field.input == "whole":
            value = form.whole_number(field.name, int(field.low), int(field.high))
        else:
            value = form.decimal(field.name, field.low, field.high)
        if value not in (None, "") and field.name not in form.errors:
            settings[field.name] = value
    if form.ok:
        for name, problem in settings_problems(kind, settings).items():
            form.error(name if name in form.values else "settings", problem)
    return settings


def _filters(form: Form) -> dict[str, list[str]]:
    types = form.many("types", EVENT_TYPES)
    events = form.names("events", EVENT_NAMES_MAX, EVENT_NAME_MAX)
    return filters_of(types, events)


def _destination_page(app_id: int, destination_id: int, status: int, form: Form | None = None,
                      notice: str | None = None, problem: str | None = None,
                      headers: dict[str, str] | None = None) -> Response:
    destinations = runtime().destinations
    app, found = destinations.get(app_id, destination_id)
    form = form or Form()
    if "types" not in form.values:  # the filters as they are, unless just sent
        form.values.update(types=found.types, events=", ".join(found.events))
    return _page("destination.html", status, headers, app=app, d=found, form=form,
                 notice=notice, problem=problem, kinds=KIND_TITLES, event_types=EVENT_TYPES,
                 can_replay=destinations.can_replay)


def _page(template: str, status: int, headers: dict[str, str] | None = None,
          **context: Any) -> Response:
    context.setdefault("kinds", KIND_TITLES)
    context.setdefault("event_types", EVENT_TYPES)
    context.setdefault("fields", FORM_FIELDS)
    return Response(render_template(template, **context), status, headers,
                    mimetype="text/html")
