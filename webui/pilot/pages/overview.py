"""The platform at a glance: modules and their services (ready/desired, health, image),
the deployed and pending revisions and the operations under way, from Commander."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template

from pilot.commander_client import CommanderUnavailable
from pilot.identity import signed_in
from pilot.runtime import runtime

pages = Blueprint("overview", __name__)
NO_MODULE = "other"


@pages.get("/")
@signed_in()
def overview() -> Response:
    try:
        status = runtime().commander.status()
    except CommanderUnavailable as exc:
        page = render_template("overview.html", problem=str(exc), status=None, modules=[])
        return Response(page, 503, {"Retry-After": "5"}, mimetype="text/html")
    return Response(render_template("overview.html", problem=None, status=status,
                                    modules=by_module(status)), mimetype="text/html")


def by_module(status: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Services grouped under the modules Commander names, in its order; services of no
    module (or of one it does not list) last."""
    order = [m for m in status.get("modules") or [] if isinstance(m, str)]
    groups: dict[str, list[dict[str, Any]]] = {m: [] for m in order}
    for row in status.get("services") or []:
        if isinstance(row, dict):
            groups.setdefault(row.get("module") or NO_MODULE, []).append(row)
    return [(name, rows) for name, rows in groups.items()]
