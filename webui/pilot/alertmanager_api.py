"""Alertmanager's API v2, as the overview reads it: the alerts firing now (not silenced,
not inhibited), the most severe first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from pilot.upstream import PlatformService, reason

SEVERITY_ORDER = ("critical", "warning", "info")
NOT_ENABLED = ("The monitoring module (Prometheus and Alertmanager) is not enabled on this "
               "platform (modules.monitoring.enabled).")


class AlertmanagerUnavailable(Exception):
    """Alertmanager cannot be reached or failed to answer."""


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str
    summary: str
    starts_at: str
    labels: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "severity": self.severity, "summary": self.summary,
                "starts_at": self.starts_at, "labels": self.labels}


class AlertmanagerAPI(PlatformService):
    def __init__(self, url: str | None, timeout: float = 3.0) -> None:
        super().__init__(url, timeout)

    def active_alerts(self) -> list[Alert]:
        if self.url is None:
            raise AlertmanagerUnavailable(NOT_ENABLED)
        try:
            answer = self._sessions.get().get(
                f"{self.url}/api/v2/alerts", timeout=(2, self.timeout),
                params={"active": "true", "silenced": "false", "inhibited": "false"})
        except requests.RequestException as exc:
            raise AlertmanagerUnavailable(f"Alertmanager is unreachable at {self.url}: "
                                          f"{reason(exc)}") from None
        try:
            document = answer.json() if answer.status_code == 200 else None
        except ValueError:
            document = None
        if not isinstance(document, list):
            raise AlertmanagerUnavailable(f"Alertmanager failed to list its alerts (HTTP "
                                          f"{answer.status_code})")
        alerts = [_alert(row) for row in document if isinstance(row, dict)]
        return sorted(alerts, key=lambda a: (_rank(a.severity), a.starts_at, a.name))


def _alert(row: dict[str, Any]) -> Alert:
    labels = {str(k): str(v) for k, v in (row.get("labels") or {}).items()}
    annotations = row.get("annotations") or {}
    name = labels.get("alertname", "unnamed")
    return Alert(name=name, severity=labels.get("severity", "unknown"),
                 summary=str(annotations.get("summary") or annotations.get("description")
                             or name),
                 starts_at=str(row.get("startsAt") or ""), labels=labels)


def _rank(severity: str) -> int:
    return SEVERITY_ORDER.index(severity) if severity in SEVERITY_ORDER else len(SEVERITY_ORDER)
