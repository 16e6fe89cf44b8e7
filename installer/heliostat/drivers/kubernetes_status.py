"""`heliostat status` rows on Kubernetes: per service, its workloads' ready and desired
replicas (a Job counts as one, ready once complete), the worst health of its objects, its
image, the revisions its objects were applied with, and its age."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from heliostat.driver import DesiredObject, LiveObject

WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
_WORST = ("missing", "unhealthy", "starting", "unknown", "healthy")


def service_rows(desired: list[DesiredObject], live: dict[str, LiveObject],
                 objects: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    wanted = {obj.service for obj in desired}
    services = sorted(wanted | {obj.service for obj in live.values()})
    now = datetime.now(timezone.utc)
    rows = []
    for service in services:
        keys = sorted(k for k, obj in live.items() if obj.service == service)
        expected = [o for o in desired if o.service == service]
        workloads = [objects[k] for k in keys if objects[k].get("kind") in WORKLOADS]
        ready = sum(_ready(w) for w in workloads)
        count = sum(_replicas(o.spec) for o in expected if o.spec.get("kind") in WORKLOADS)
        healths = [live[k].health for k in keys]
        if len(keys) < len(expected):
            health = "missing"
        else:
            health = min(healths, key=_WORST.index) if healths else "missing"
        created = [_time(objects[k]["metadata"].get("creationTimestamp")) for k in keys]
        created = [t for t in created if t is not None]
        rows.append({
            "service": service, "ready": ready, "desired": count, "health": health,
            "image": _image(workloads[0]) if workloads else "", "image_id": None,
            "revisions": sorted({live[k].revision for k in keys}),
            "age_seconds": round((now - min(created)).total_seconds()) if created else None,
        })
    return rows


def _replicas(spec: dict[str, Any]) -> int:
    if spec.get("kind") == "Job":
        return 1
    return int((spec.get("spec") or {}).get("replicas", 1))


def _ready(workload: dict[str, Any]) -> int:
    status = workload.get("status") or {}
    if workload.get("kind") == "Job":
        return int(any(c.get("type") == "Complete" and c.get("status") == "True"
                       for c in status.get("conditions") or []))
    if workload.get("kind") == "Deployment":
        return int(status.get("availableReplicas", 0))
    return int(status.get("readyReplicas", 0))


def _image(workload: dict[str, Any]) -> str:
    containers = (((workload.get("spec") or {}).get("template") or {}).get("spec")
                  or {}).get("containers") or [{}]
    return str(containers[0].get("image", ""))


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
