"""The clickstream charts: what each one asks Prometheus, over which windows, and the
answer laid out as the chart draws it (one time axis, a value list per series, None
for a gap).

Rates are per second over a range of at least four scrapes, so that a chart of a short
window still has a rate at every step; counters are summed over the Event API's (and
the workers') processes, and split by destination or reason where the metric says.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pilot.prometheus_api import PrometheusAPI, PrometheusUnavailable, Series


@dataclass(frozen=True)
class Window:
    seconds: int
    step: int  # seconds between two points: at most a few hundred points per series
    label: str


WINDOWS: dict[str, Window] = {
    "15m": Window(15 * 60, 15, "15 minutes"),
    "1h": Window(3600, 30, "1 hour"),
    "6h": Window(6 * 3600, 120, "6 hours"),
    "24h": Window(24 * 3600, 600, "24 hours"),
    "7d": Window(7 * 24 * 3600, 3600, "7 days"),
}
DEFAULT_WINDOW = "1h"


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    unit: str
    #: PromQL; `{range}` becomes the rate's range for the window.
    query: str
    #: What the chart says when it has no series in the window.
    empty: str
    #: The label that names each series (None: one series, `total`).
    split_by: str | None = None


CHARTS: tuple[Chart, ...] = (
    Chart("received", "Events received", "events/s",
          "sum(rate(clickstream_events_received_total[{range}]))",
          "No Event API has reported yet. Is the clickstream module running?"),
    Chart("rejected", "Requests rejected, by reason", "requests/s",
          "sum by (reason) (rate(clickstream_events_rejected_total[{range}]))",
          "No request was rejected in this window.", "reason"),
    Chart("delivered", "Events delivered, by destination", "events/s",
          "sum by (destination) (rate(clickstream_events_delivered_total[{range}]))",
          "No destination delivered anything in this window. Add one on an app's page.",
          "destination"),
    Chart("retried", "Delivery attempts retried, by destination", "attempts/s",
          "sum by (destination) (rate(clickstream_events_retried_total[{range}]))",
          "No delivery was retried in this window.", "destination"),
    Chart("dead_lettered", "Events dead-lettered, by destination", "events/s",
          "sum by (destination) (rate(clickstream_events_dead_lettered_total[{range}]))",
          "No event went to dead letters in this window.", "destination"),
    Chart("lag", "Consumer lag, by destination", "events",
          "max by (destination) (clickstream_consumer_lag)",
          "No router or worker has reported its lag yet.", "destination"),
)


def rate_range(window: Window, scrape_seconds: int) -> str:
    return f"{max(window.step, 4 * scrape_seconds)}s"


def chart_data(prometheus: PrometheusAPI, window_name: str, now: float, scrape_seconds: int,
               series_name: Callable[[str, str], str]) -> dict[str, Any]:
    """Every chart over the window ending now. After a query fails, the charts left are
    not asked for (an unreachable Prometheus would cost a timeout each): they carry the
    same `problem` and no series. `series_name(label, value)` names a series (the
    destination ids become their names)."""
    window = WINDOWS[window_name]
    end = math.floor(now / window.step) * window.step
    start = end - window.seconds
    times = list(range(start, end + 1, window.step))
    charts = []
    problem: str | None = None
    for chart in CHARTS:
        entry: dict[str, Any] = {"id": chart.id, "title": chart.title, "unit": chart.unit,
                                 "empty": chart.empty, "series": [], "problem": problem}
        if problem is None:
            try:
                found = prometheus.query_range(
                    chart.query.format(range=rate_range(window, scrape_seconds)),
                    start, end, window.step)
            except PrometheusUnavailable as exc:
                problem = entry["problem"] = str(exc)
            else:
                entry["series"] = sorted((_aligned(chart, row, times, series_name)
                                          for row in found), key=lambda s: s["name"])
        charts.append(entry)
    return {"window": window_name, "start": start, "end": end, "step": window.step,
            "times": times, "charts": charts, "problem": problem}


def _aligned(chart: Chart, series: Series, times: list[int],
             series_name: Callable[[str, str], str]) -> dict[str, Any]:
    """The series on the chart's time axis: Prometheus leaves out the steps it has no
    sample for."""
    by_time = {round(t): v for t, v in series.points}
    if chart.split_by is None:
        name = "total"
    else:
        name = series_name(chart.split_by, series.labels.get(chart.split_by, ""))
    values = [by_time.get(t) for t in times]
    latest = next((v for v in reversed(values) if v is not None), None)
    return {"name": name, "values": values, "latest": latest}
