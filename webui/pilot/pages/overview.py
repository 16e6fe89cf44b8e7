"""The platform at a glance: modules and their services (ready/desired, health, image),
the deployed and pending revisions and the operations under way, from Commander; the
alerts firing, from Alertmanager; Airflow's health, with the way to its UI."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template

from pilot.airflow_status import AirflowStatus
from pilot.alertmanager_api import Alert, AlertmanagerUnavailable
from pilot.commander_client import CommanderUnavailable
from pilot.identity import signed_in
from pilot.runtime import runtime

pages = Blueprint("overview", __name__)
NO_MODULE = "other"


@pages.get("/")
@signed_in()
def overview() -> Response:
    pilot = runtime()
    alerts, alerts_problem = active_alerts()
    airflow = airflow_if_enabled()
    shown = {"alerts": alerts, "alerts_problem": alerts_problem,
             "monitoring": pilot.alertmanager.enabled, "airflow": airflow}
    try:
        status = pilot.commander.status()
    except CommanderUnavailable as exc:
        page = render_template("overview.html", problem=str(exc), status=None, modules=[],
                               **shown)
        return Response(page, 503, {"Retry-After": "5"}, mimetype="text/html")
    return Response(render_template("overview.html", problem=None, status=status,
                                    modules=by_module(status), **shown), mimetype="text/html")


def active_alerts() -> tuple[list[Alert], str | None]:
    """The alerts firing now and, when Alertmanager could not say, why not."""
    alertmanager = runtime().alertmanager
    if not alertmanager.enabled:
        return [], None
    try:
        return alertmanager.active_alerts(), None
    except AlertmanagerUnavailable as exc:
        return [], str(exc)


def airflow_if_enabled() -> AirflowStatus | None:
    airflow = runtime().airflow
    return airflow.status() if airflow.enabled else None


def by_module(status: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Services grouped under the modules Commander names, in its order; services of no
    module (or of one it does not list) last."""
    order = [m for m in status.get("modules") or [] if isinstance(m, str)]
    groups: dict[str, list[dict[str, Any]]] = {m: [] for m in order}
    for row in status.get("services") or []:
        if isinstance(row, dict):
            groups.setdefault(row.get("module") or NO_MODULE, []).append(row)
    return [(name, rows) for name, rows in groups.items()]
