"""The JSON API under /api/v1: what the pages show, for scripts (bearer API tokens) and
for the pages' own scripts (session cookie plus the X-CSRF-Token header on changes).

Errors are `{"error": ..., "status": ...}` with a 4xx status; Commander's refusals keep
its status and message.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Blueprint, Response, abort, request

from pilot import airflow_status, alertmanager_api, api_tokens
from pilot.clickstream_apps import NAME_MAX, RATE_LIMIT_MAX, AppNameTaken, key_json, name_problem
from pilot.clickstream_destinations import (
    KINDS,
    DestinationNameTaken,
    InvalidDestination,
    filters_of,
    filters_problems,
    secret_problem,
    settings_problems,
)
from pilot.clickstream_destinations import name_problem as destination_name_problem
from pilot.errors import InvalidInput
from pilot.identity import NotAllowed, current, signed_in
from pilot.live_events import LATEST_MAX
from pilot.pages.apps import event_api
from pilot.pages.charts import NOT_ENABLED as CHARTS_NOT_ENABLED
from pilot.pages.charts import charts_json, window_argument
from pilot.pages.overview import airflow_if_enabled
from pilot.pages.releases import OPERATION_ID
from pilot.pages.tokens import allowed_roles, revoke_for, role_of
from pilot.responses import json_response
from pilot.runtime import runtime
from pilot.text import control_characters

log = logging.getLogger(__name__)
api = Blueprint("api", __name__, url_prefix="/api/v1")


@api.get("/me")
@signed_in()
def me() -> Response:
    found = current()
    return json_response({**found.user.to_json(), "via": found.via})


@api.get("/status")
@signed_in()
def status() -> Response:
    return json_response(runtime().commander.status())


@api.get("/releases")
@signed_in()
def releases() -> Response:
    return json_response({"releases": runtime().commander.releases()})


@api.get("/releases/<int:number>")
@signed_in()
def release(number: int) -> Response:
    return json_response(runtime().commander.release(number))


@api.get("/releases/<int:number>/diff/<int:other>")
@signed_in()
def diff(number: int, other: int) -> Response:
    return json_response(runtime().commander.diff(number, other))


@api.post("/rollback")
@signed_in(admin=True)
def rollback() -> Response:
    body = json_body({"revision": int})
    revision = body["revision"]
    if revision < 1:
        raise InvalidInput("`revision` must be a revision number, 1 or more")
    accepted = runtime().commander.rollback(revision)
    log.info("rollback requested", extra={"username": current().user.username,
                                          "remote": request.remote_addr, "revision": revision,
                                          "operation": accepted.get("operation")})
    operation = str(accepted.get("operation", ""))
    location = f"/api/v1/operations/{operation}"
    return json_response({**accepted, "url": location, "page": f"/operations/{operation}"},
                         202, {"Location": location})


@api.get("/operations/<operation_id>")
@signed_in()
def operation(operation_id: str) -> Response:
    if not OPERATION_ID.fullmatch(operation_id):
        abort(404, f"no operation {operation_id} (operations are named op-<number>)")
    return json_response(runtime().commander.operation(operation_id))


@api.get("/tokens")
@signed_in()
def token_list() -> Response:
    user = current().user
    with runtime().database.connect() as conn:
        found = api_tokens.listing(conn, None if user.is_admin else user)
    return json_response({"tokens": [t.to_json() for t in found]})


@api.post("/tokens")
@signed_in()
def token_create() -> Response:
    if current().via == "token":
        # A token could otherwise make one that never expires, outliving its own expiry
        # or revocation.
        raise NotAllowed("API tokens are made by a signed-in user, not by another token")
    user = current().user
    body = json_body({"name": str}, optional={"role": str, "expires_in_days": int})
    name = body["name"].strip()
    if not 1 <= len(name) <= api_tokens.NAME_MAX or control_characters(name):
        raise InvalidInput(f"`name` must be 1 to {api_tokens.NAME_MAX} characters, none of "
                           "them a control character")
    role = body.get("role", "viewer")
    if role not in allowed_roles(user):
        raise InvalidInput(f"`role` must be one of {', '.join(allowed_roles(user))}")
    days = body.get("expires_in_days")
    if days is not None and not 1 <= days <= api_tokens.MAX_DAYS:
        raise InvalidInput(f"`expires_in_days` must be from 1 to {api_tokens.MAX_DAYS}")
    with runtime().database.connect() as conn:
        token, info = api_tokens.create(conn, user, name, role_of(role), days)
    log.info("API token created", extra={"username": user.username, "token_id": info.id,
                                         "role": info.role, "remote": request.remote_addr})
    return json_response({**info.to_json(), "token": token}, 201,
                         {"Location": f"/api/v1/tokens/{info.id}"})


@api.delete("/tokens/<int:token_id>")
@signed_in()
def token_revoke(token_id: int) -> Response:
    user = current().user
    with runtime().database.connect() as conn:
        revoke_for(conn, user, token_id)
        info = api_tokens.find(conn, token_id)
    log.info("API token revoked", extra={"username": user.username, "token_id": token_id,
                                         "remote": request.remote_addr})
    return json_response(info.to_json() if info else {"id": token_id})


@api.get("/apps")
@signed_in()
def app_list() -> Response:
    return json_response({"apps": [a.to_json() for a in runtime().clickstream.apps()]})


@api.post("/apps")
@signed_in(admin=True)
def app_create() -> Response:
    body = json_body({"name": str}, optional={"rate_limit": int})
    name = body["name"].strip()
    if not 1 <= len(name) <= NAME_MAX or control_characters(name):
        raise InvalidInput(f"`name` must be 1 to {NAME_MAX} characters, none of them a "
                           "control character")
    if (problem := name_problem(name)) is not None:
        raise InvalidInput(f"`name`: {problem}")
    rate_limit = body.get("rate_limit")
    if rate_limit is not None and not 1 <= rate_limit <= RATE_LIMIT_MAX:
        raise InvalidInput(f"`rate_limit` must be from 1 to {RATE_LIMIT_MAX} (events/s per "
                           "Event API process); leave it out for no limit")
    try:
        found, key = runtime().clickstream.create(name, rate_limit)
    except AppNameTaken:
        abort(409, f"there is already an app named {name!r}")
    log.info("clickstream app created", extra={"username": current().user.username,
                                               "app_id": found.app.id,
                                               "remote": request.remote_addr})
    return json_response({**found.to_json(), "write_key": key, "event_api": event_api().url},
                         201, {"Location": f"/api/v1/apps/{found.app.id}"})


@api.get("/apps/<int:app_id>")
@signed_in()
def app_show(app_id: int) -> Response:
    return json_response(runtime().clickstream.app(app_id).to_json())


@api.get("/apps/<int:app_id>/keys")
@signed_in()
def app_keys(app_id: int) -> Response:
    found = runtime().clickstream.app(app_id)
    return json_response({"keys": [key_json(k) for k in found.keys]})


@api.post("/apps/<int:app_id>/keys")
@signed_in(admin=True)
def app_key_add(app_id: int) -> Response:
    if request.get_data():
        json_body({})  # nothing to say about a new key: no body, or an empty object
    _, entry, key = runtime().clickstream.add_key(app_id)
    log.info("write key added", extra={"username": current().user.username, "app_id": app_id,
                                       "key_id": entry.id, "remote": request.remote_addr})
    return json_response({**key_json(entry), "write_key": key, "event_api": event_api().url},
                         201, {"Location": f"/api/v1/apps/{app_id}/keys/{entry.id}"})


@api.get("/apps/<int:app_id>/keys/<int:key_id>")
@signed_in()
def app_key(app_id: int, key_id: int) -> Response:
    return json_response(key_json(runtime().clickstream.app(app_id).key(key_id)))


@api.delete("/apps/<int:app_id>/keys/<int:key_id>")
@signed_in(admin=True)
def app_key_revoke(app_id: int, key_id: int) -> Response:
    _, key = runtime().clickstream.revoke(app_id, key_id)
    log.info("write key revoked", extra={"username": current().user.username,
                                         "app_id": app_id, "key_id": key_id,
                                         "remote": request.remote_addr})
    return json_response(key_json(key))


@api.get("/apps/<int:app_id>/destinations")
@signed_in()
def destination_list(app_id: int) -> Response:
    _, found = runtime().destinations.listing(app_id)
    return json_response({"destinations": [d.to_json() for d in found]})


@api.post("/apps/<int:app_id>/destinations")
@signed_in(admin=True)
def destination_create(app_id: int) -> Response:
    body = json_body({"name": str, "kind": str},
                     optional={"settings": dict, "secret": str, "filters": dict,
                               "enabled": bool})
    name, kind = body["name"].strip(), body["kind"]
    if kind not in KINDS:
        raise InvalidInput(f"`kind` must be one of {', '.join(KINDS)}")
    problems = {}
    if (problem := destination_name_problem(name)) is not None:
        problems["name"] = problem
    settings = body.get("settings", {})
    problems.update({f"settings.{k}": v for k, v in settings_problems(kind, settings).items()})
    secret = body.get("secret")
    if secret is not None and (problem := secret_problem(kind, secret)) is not None:
        problems["secret"] = problem
    filters = _filters_body(body.get("filters", {}), problems)
    if problems:
        raise InvalidDestination(problems)
    try:
        made = runtime().destinations.create(app_id, name, kind, settings, secret, filters,
                                             body.get("enabled", True))
    except DestinationNameTaken:
        abort(409, f"the app has a destination named {name!r} already")
    log.info("destination created", extra={"username": current().user.username,
                                           "app_id": app_id, "destination_id": made.id,
                                           "kind": kind, "remote": request.remote_addr})
    return json_response(made.to_json(), 201,
                         {"Location": f"/api/v1/apps/{app_id}/destinations/{made.id}"})


@api.get("/apps/<int:app_id>/destinations/<int:destination_id>")
@signed_in()
def destination_show(app_id: int, destination_id: int) -> Response:
    _, found = runtime().destinations.get(app_id, destination_id)
    return json_response(found.to_json())


@api.patch("/apps/<int:app_id>/destinations/<int:destination_id>")
@signed_in(admin=True)
def destination_change(app_id: int, destination_id: int) -> Response:
    body = json_body({}, optional={"enabled": bool, "filters": dict})
    problems: dict[str, str] = {}
    changes: dict[str, Any] = {}
    if "filters" in body:
        changes["filters"] = _filters_body(body["filters"], problems)
    if problems:
        raise InvalidDestination(problems)
    if "enabled" in body:
        changes["enabled"] = body["enabled"]
    destinations = runtime().destinations
    if not changes:
        _, found = destinations.get(app_id, destination_id)
        return json_response(found.to_json())
    changed = destinations.change(app_id, destination_id, **changes)
    log.info("destination changed", extra={"username": current().user.username,
                                           "app_id": app_id, "destination_id": destination_id,
                                           "changed": sorted(changes),
                                           "remote": request.remote_addr})
    return json_response(changed.to_json())


@api.delete("/apps/<int:app_id>/destinations/<int:destination_id>")
@signed_in(admin=True)
def destination_delete(app_id: int, destination_id: int) -> Response:
    gone = runtime().destinations.delete(app_id, destination_id)
    log.info("destination deleted", extra={"username": current().user.username,
                                           "app_id": app_id, "destination_id": destination_id,
                                           "remote": request.remote_addr})
    return json_response(gone.to_json())


@api.post("/apps/<int:app_id>/destinations/<int:destination_id>/replay")
@signed_in(admin=True)
def destination_replay(app_id: int, destination_id: int) -> Response:
    if request.get_data():
        json_body({})  # nothing to say about a replay: no body, or an empty object
    destinations = runtime().destinations
    count = destinations.replay(app_id, destination_id)
    log.info("dead letters replayed", extra={
        "username": current().user.username, "app_id": app_id,
        "destination_id": destination_id, "events": count, "remote": request.remote_addr})
    _, found = destinations.get(app_id, destination_id)
    return json_response({"replayed": count, "destination": found.to_json()})


@api.get("/apps/<int:app_id>/events")
@signed_in()
def app_events(app_id: int) -> Response:
    raw = request.args.get("limit", "100")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= LATEST_MAX:
        raise InvalidInput(f"`limit` must be a whole number from 1 to {LATEST_MAX}")
    pilot = runtime()
    pilot.clickstream.app(app_id)  # 404 for an unknown app
    found = pilot.live_events.latest(app_id, int(raw))
    return json_response({"events": [e.to_json() for e in found]})


@api.get("/charts")
@signed_in()
def charts() -> Response:
    window = window_argument()
    if not runtime().prometheus.enabled:
        abort(404, CHARTS_NOT_ENABLED)
    return json_response(charts_json(window))


@api.get("/alerts")
@signed_in()
def alerts() -> Response:
    if not runtime().alertmanager.enabled:
        abort(404, alertmanager_api.NOT_ENABLED)
    return json_response({"alerts": [a.to_json() for a in runtime().alertmanager.active_alerts()]})


@api.get("/airflow")
@signed_in()
def airflow() -> Response:
    found = airflow_if_enabled()
    if found is None:
        abort(404, airflow_status.NOT_ENABLED)
    return json_response(found.to_json())


def _filters_body(raw: dict[str, Any], problems: dict[str, str]) -> dict[str, list[str]]:
    """`filters` of a request, checked ({"types": [...], "events": [...]}); what is wrong
    goes into `problems`."""
    unknown = sorted(set(raw) - {"types", "events"})
    if unknown:
        problems["filters"] = f"unknown field(s): {', '.join(map(str, unknown))[:200]}"
        return {}
    types, events = raw.get("types", []), raw.get("events", [])
    for name, value in (("types", types), ("events", events)):
        if not isinstance(value, list):
            problems[f"filters.{name}"] = "a JSON array"
    if any(k.startswith("filters.") for k in problems):
        return {}
    found = filters_problems(types, events)
    problems.update({f"filters.{k}": v for k, v in found.items()})
    return {} if found else filters_of(types, events)


def json_body(required: dict[str, type],
              optional: dict[str, type] | None = None) -> dict[str, Any]:
    """The request's JSON object with `required` fields present and each field of its type;
    InvalidInput (400) otherwise, unknown fields included."""
    optional = optional or {}
    if not request.is_json:
        raise InvalidInput("send a JSON object with Content-Type: application/json")
    try:
        body = json.loads(request.get_data() or b"")
    except ValueError:
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise InvalidInput(f"unknown field(s): {', '.join(unknown)}")
    for name, kind in {**required, **optional}.items():
        if name not in body:
            if name in required:
                raise InvalidInput(f"`{name}` is required")
            continue
        value = body[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise InvalidInput(f"`{name}` must be {_KIND_NAMES[kind]}")
        if isinstance(value, str) and not _encodable(value):
            # JSON's \u escapes can carry half a surrogate pair, which no database takes.
            raise InvalidInput(f"`{name}` is not valid Unicode text (a lone surrogate)")
    return body


_KIND_NAMES = {str: "a string", int: "a whole number", bool: "true or false",
               dict: "a JSON object", list: "a JSON array"}


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
