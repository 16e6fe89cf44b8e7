"""Prometheus's HTTP API, as the charts read it: range queries over `/api/v1/query_range`.

One failure kind for the pages, PrometheusUnavailable, with why (unreachable, timed
out, an error Prometheus answered): a chart says it and the others still draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import requests

from pilot.upstream import PlatformService, reason


class PrometheusUnavailable(Exception):
    """Prometheus cannot be reached, or refused or failed the query."""


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    #: (unix time, value); NaN and infinities (a rate over no samples, a division by
    #: zero) are None, which JSON and the chart both take as a gap.
    points: list[tuple[float, float | None]]


class PrometheusAPI(PlatformService):
    def __init__(self, url: str | None, timeout: float = 5.0) -> None:
        super().__init__(url, timeout)

    def query_range(self, query: str, start: float, end: float, step: int) -> list[Series]:
        data = self._get("/api/v1/query_range",
                         {"query": query, "start": start, "end": end, "step": step})
        if not isinstance(data, dict) or data.get("resultType") != "matrix":
            raise PrometheusUnavailable("Prometheus answered a range query with no matrix")
        return [Series({str(k): str(v) for k, v in (row.get("metric") or {}).items()},
                       [(float(t), _value(v)) for t, v in row.get("values") or []])
                for row in data.get("result") or [] if isinstance(row, dict)]

    def health(self) -> str | None:
        """None when Prometheus says it is ready to serve queries, else why not."""
        return self.probe("/-/ready", "not ready")

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        if self.url is None:
            raise PrometheusUnavailable("the monitoring module is not enabled on this platform")
        try:
            answer = self._sessions.get().get(self.url + path, params=params,
                                         timeout=(3, self.timeout))
        except requests.RequestException as exc:
            raise PrometheusUnavailable(f"Prometheus is unreachable at {self.url}: "
                                        f"{reason(exc)}") from None
        try:
            document = answer.json()
        except ValueError:
            document = None
        if not isinstance(document, dict) or document.get("status") != "success":
            error = document.get("error") if isinstance(document, dict) else None
            detail = f": {error}" if error else ""
            raise PrometheusUnavailable(f"Prometheus failed the query (HTTP "
                                        f"{answer.status_code}{detail})")
        return document.get("data")


def _value(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None
