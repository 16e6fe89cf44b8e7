"""Airflow as the Airflow page shows it: its components' health and heartbeats from the
API server's `/api/v2/monitor/health`, and the Celery workers online as Flower's metrics
count them (`flower_worker_online`). Neither needs an Airflow login."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from pilot.upstream import PlatformService, reason

#: The components /monitor/health reports, in the order the page lists them.
COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
NOT_ENABLED = "The Airflow module is not enabled on this platform (modules.airflow.enabled)."


@dataclass(frozen=True)
class Component:
    name: str
    status: str  # "healthy", "unhealthy", or "unknown" (not running, never reported)
    heartbeat: str | None  # ISO time of its latest heartbeat, when it has one

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "heartbeat": self.heartbeat}


@dataclass(frozen=True)
class AirflowStatus:
    #: Where a browser opens the Airflow UI: through the platform's gateway.
    link: str
    components: list[Component] = field(default_factory=list)
    #: Why the API server's health could not be read; None when it was.
    problem: str | None = None
    workers: list[str] = field(default_factory=list)  # names of the workers online
    #: Why Flower could not be read (then `workers` is unknown, not empty).
    workers_problem: str | None = None

    @property
    def healthy(self) -> bool:
        return (self.problem is None and self.workers_problem is None and bool(self.workers)
                and all(c.status == "healthy" for c in self.components
                        if c.name in ("metadatabase", "scheduler")))

    def to_json(self) -> dict[str, Any]:
        return {"link": self.link, "healthy": self.healthy, "problem": self.problem,
                "components": [c.to_json() for c in self.components],
                "workers": None if self.workers_problem else self.workers,
                "workers_problem": self.workers_problem}


class Airflow(PlatformService):
    """Its API server at `url` (with the `/airflow` base path), Flower at `flower_url`."""

    def __init__(self, api_url: str | None, flower_url: str | None, link: str,
                 timeout: float = 3.0) -> None:
        super().__init__(api_url, timeout)
        self.flower_url = flower_url.rstrip("/") if flower_url else None
        self.link = link

    def status(self) -> AirflowStatus:
        components, problem = self._components()
        workers, workers_problem = self._workers()
        return AirflowStatus(link=self.link, components=components, problem=problem,
                             workers=workers, workers_problem=workers_problem)

    def _components(self) -> tuple[list[Component], str | None]:
        url = f"{self.url}/api/v2/monitor/health"
        try:
            answer = self._sessions.get().get(url, timeout=(2, self.timeout))
        except requests.RequestException as exc:
            return [], f"the Airflow API server is unreachable at {self.url}: {reason(exc)}"
        try:
            document = answer.json()
        except ValueError:
            document = None
        if answer.status_code != 200 or not isinstance(document, dict):
            return [], f"the Airflow API server failed its health check (HTTP {answer.status_code})"
        components = []
        for name in COMPONENTS:
            row = document.get(name)
            if not isinstance(row, dict):
                continue
            heartbeat = row.get(f"latest_{name}_heartbeat")
            components.append(Component(name, str(row.get("status") or "unknown"),
                                        str(heartbeat) if heartbeat else None))
        return components, None

    def _workers(self) -> tuple[list[str], str | None]:
        if self.flower_url is None:
            return [], "Pilot is not given Flower's address"
        try:
            answer = self._sessions.get().get(f"{self.flower_url}/metrics",
                                              timeout=(2, self.timeout))
        except requests.RequestException as exc:
            return [], f"Flower is unreachable at {self.flower_url}: {reason(exc)}"
        if answer.status_code != 200:
            return [], f"Flower failed to answer its metrics (HTTP {answer.status_code})"
        try:
            online = sorted({sample.labels.get("worker", "")
                             for family in text_string_to_metric_families(answer.text)
                             if family.name == "flower_worker_online"
                             for sample in family.samples if sample.value == 1})
        except ValueError:
            return [], "Flower's metrics are not in Prometheus's text format"
        return online, None
