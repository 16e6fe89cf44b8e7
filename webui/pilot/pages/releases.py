"""Releases: the ledger's history, what changed between two revisions, and rolling back
to one (a confirmation page, then Commander's rollback, then the operation followed)."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request

from pilot.errors import InvalidInput
from pilot.identity import current, signed_in
from pilot.runtime import runtime

log = logging.getLogger(__name__)
pages = Blueprint("releases", __name__)

ROLLBACK_TARGETS = ("deployed", "superseded")  # what Commander can go back to
OPERATION_ID = re.compile(r"op-[0-9]{1,9}")


@pages.get("/releases")
@signed_in()
def history() -> Response:
    releases = sorted(runtime().commander.releases(), key=lambda r: -int(r["revision"]))
    return _page("releases.html", releases=releases, current=current_revision(releases))


@pages.get("/releases/diff")
@signed_in()
def diff() -> Response:
    old, new = _revision_arg("from"), _revision_arg("to")
    changes = runtime().commander.diff(old, new)
    return _page("diff.html", diff=changes, old=old, new=new)


@pages.get("/releases/<int:number>/rollback")
@signed_in(admin=True)
def confirm_rollback(number: int) -> Response:
    commander = runtime().commander
    releases = commander.releases()
    chosen = next((r for r in releases if r.get("revision") == number), None)
    if chosen is None:
        abort(404, f"There is no revision {number} in the platform's history.")
    current = current_revision(releases)
    problem = None
    if chosen.get("status") not in ROLLBACK_TARGETS:
        problem = (f"Revision {number} is {chosen.get('status')}: it was never deployed, so "
                   "there is nothing to go back to. Pick one that was deployed or superseded.")
    elif current is not None and current == number:
        problem = f"Revision {number} is the one deployed now."
    changes = commander.diff(current, number) if current and not problem else None
    page = render_template("rollback.html", release=chosen, current=current, diff=changes,
                           problem=problem)
    return Response(page, 409 if problem else 200, mimetype="text/html")


@pages.post("/releases/<int:number>/rollback")
@signed_in(admin=True)
def rollback(number: int) -> Response:
    accepted = runtime().commander.rollback(number)
    operation = str(accepted.get("operation", ""))
    log.info("rollback requested", extra={"username": current().user.username,
                                          "remote": request.remote_addr, "revision": number,
                                          "operation": operation})
    if not OPERATION_ID.fullmatch(operation):
        return redirect("/releases", 303)
    return redirect(f"/operations/{operation}", 303)


@pages.get("/operations/<operation_id>")
@signed_in()
def operation(operation_id: str) -> Response:
    if not OPERATION_ID.fullmatch(operation_id):
        abort(404, f"There is no operation {operation_id}: operations are named op-<number>.")
    found = runtime().commander.operation(operation_id)
    return _page("operation.html", operation=found,
                 finished=found.get("state") in FINISHED)


FINISHED = frozenset({"deployed", "unchanged", "rolled-back", "failed", "superseded"})


def current_revision(releases: list[dict[str, Any]]) -> int | None:
    """The revision deployed now: the newest whose status is `deployed`."""
    deployed = [int(r["revision"]) for r in releases if r.get("status") == "deployed"]
    return max(deployed) if deployed else None


def _revision_arg(name: str) -> int:
    raw = request.args.get(name, "")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= len(raw) <= 9 or int(raw) < 1:
        raise InvalidInput(f"`{name}` must be a revision number (a whole number from 1), "
                           f"not {raw!r}")
    return int(raw)


def _page(template: str, **context: Any) -> Response:
    return Response(render_template(template, **context), mimetype="text/html")
