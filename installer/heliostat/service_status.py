"""How each service of a platform stands: ready/desired containers, health, image,
revision and age, from the desired objects and what the driver observed (`status`,
and Commander's `GET /api/v1/status`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from heliostat.driver import DesiredObject, LiveObject
from heliostat.ledger import Ledger

_WORST = ("missing", "unhealthy", "starting", "unknown", "healthy")


def platform_summary(name: str, driver: Any, ledger: Ledger) -> dict[str, Any]:
    """What `heliostat status --output json` prints (and Commander's status serves): the
    deployed and pending revisions and a row per service."""
    deployed, pending = ledger.last_deployed(), ledger.pending()
    # What should run: the deployed revision's objects, or those of a first install
    # still being applied.
    source = deployed or pending
    desired = driver.desired_objects(source.manifests if source else {})
    rows = driver.service_rows(desired, driver.observe())
    return {
        "platform": name,
        "revision": None if deployed is None else {
            "number": deployed.number, "description": deployed.description,
            "deployed_at": deployed.updated_at},
        "pending": None if pending is None else {
            "number": pending.number, "description": pending.description},
        "services": rows,
    }


def service_rows(desired: list[DesiredObject], containers: dict[str, Any],
                 live: dict[str, LiveObject]) -> list[dict[str, Any]]:
    """One row per service, desired or running: how many of its containers are ready."""
    wanted: dict[str, int] = {}
    for obj in desired:
        wanted[obj.service] = wanted.get(obj.service, 0) + 1
    services = sorted(set(wanted) | {obj.service for obj in live.values()})
    now = datetime.now(timezone.utc)
    rows = []
    for service in services:
        keys = sorted(k for k, obj in live.items() if obj.service == service and "+" not in k)
        healths = [live[k].health for k in keys]
        ready = sum(h == "healthy" for h in healths)
        count = wanted.get(service, 0)
        if ready == count == len(keys):
            health = "healthy"
        elif len(keys) < count:
            health = "missing"
        else:
            health = min(healths, key=_WORST.index) if healths else "missing"
        started = [_started(containers[k]) for k in keys]
        started = [t for t in started if t is not None]
        first = containers[keys[0]] if keys else None
        rows.append({
            "service": service, "ready": ready, "desired": count, "health": health,
            "image": (live[keys[0]].spec or {}).get("image", "") if keys else "",
            "image_id": first.attrs.get("Image") if first is not None else None,
            "revisions": sorted({live[k].revision for k in keys}),
            "age_seconds": round((now - min(started)).total_seconds()) if started else None,
        })
    return rows


def _started(container: Any) -> datetime | None:
    text = (container.attrs.get("State") or {}).get("StartedAt") or ""
    if not text or text.startswith("0001-"):
        return None
    main, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{main}.{(fraction or '0')[:6]}+00:00")
