"""The clickstream charts page: events received, rejected, delivered, retried and
dead-lettered per second, and consumer lag per destination, from Prometheus, over a
window the reader picks. The page carries the data it opens with; its script draws it
and refreshes it from /api/v1/charts."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, Response, render_template, request

from clickstream import storage
from pilot.charts import DEFAULT_WINDOW, WINDOWS, chart_data
from pilot.clickstream_apps import ClickstreamDisabled, ClickstreamUnavailable
from pilot.errors import InvalidInput
from pilot.identity import signed_in
from pilot.runtime import runtime

pages = Blueprint("charts", __name__)
NOT_ENABLED = ("Charts come from the monitoring module's Prometheus, which this platform "
               "does not run. Enable it (modules.monitoring.enabled: true in platform.yaml) "
               "and upgrade.")


def window_argument() -> str:
    name = request.args.get("window", DEFAULT_WINDOW)
    if name not in WINDOWS:
        raise InvalidInput(f"`window` must be one of {', '.join(WINDOWS)}")
    return name


def charts_json(window: str) -> dict[str, Any]:
    """The charts over the window ending now, each series named for a reader."""
    pilot = runtime()
    names = _destination_names()

    def series_name(label: str, value: str) -> str:
        if label != "destination":
            return value or "unknown"
        if value == "router":
            return "router (all events)"
        return names.get(value, f"destination {value}")

    return chart_data(pilot.prometheus, window, time.time(),
                      pilot.settings.prometheus_scrape_seconds, series_name)


@pages.get("/charts")
@signed_in()
def charts() -> Response:
    window = window_argument()
    pilot = runtime()
    if not pilot.prometheus.enabled:
        return Response(render_template("charts.html", windows=WINDOWS, window=window,
                                        data=None, problem=NOT_ENABLED),
                        mimetype="text/html")
    data = charts_json(window)
    return Response(render_template("charts.html", windows=WINDOWS, window=window, data=data,
                                    data_json=json.dumps(data), problem=data["problem"]),
                    mimetype="text/html")


def _destination_names() -> dict[str, str]:
    """Destination ids (as the metrics label them) to "name (app)"; empty when the
    clickstream database cannot say, and the charts show the ids."""
    try:
        with runtime().clickstream.connect() as conn:
            apps = {app.id: app.name for app in storage.list_apps(conn)}
            return {str(d.id): f"{d.name} ({apps.get(d.app_id, 'app ' + str(d.app_id))})"
                    for d in storage.list_destinations(conn)}
    except (ClickstreamDisabled, ClickstreamUnavailable):
        return {}
