"""What the registry's notifications become: each event of an envelope is queued as an
image update of the services its repository maps to, or ignored with the reason; both
are written to the audit log.

One digest makes one revision: a push of what those services run already, or of the
digest the newest push for them carried (queued, running or done, whatever came of it),
is ignored. A push queued behind a newer one for the same services is superseded by it
(OperationQueue), so a burst of pushes makes one revision, the newest.
"""

from __future__ import annotations

from typing import Any

from commander import metrics
from commander.agent import Commander
from commander.operations import Operation
from commander.platform_state import Refused
from commander.registry_events import Ignored, RegistryEvent, Rollout, classify

REGISTRY_IDENTITY = "registry"  # who a notification stands for in the audit log


def handle_events(commander: Commander, events: list[RegistryEvent],
                  remote: str | None) -> list[dict[str, Any]]:
    """Each event's result, as the webhook answers it."""
    settings = commander.platform.commander_config()
    repositories = settings.get("repositories") or []
    return [_handle(commander, classify(event, repositories), settings, remote)
            for event in events]


def _handle(commander: Commander, result: Rollout | Ignored, settings: dict[str, Any],
            remote: str | None) -> dict[str, Any]:
    event = result.event
    answer: dict[str, Any] = {"id": event.id, "event": event.summary()}
    if isinstance(result, Rollout) and not settings.get("auto_update", False):
        result = Ignored(event, "modules.commander.auto_update is off: pushes are not "
                                "rolled out by themselves (POST /api/v1/services/{name}/image "
                                f"with {result.image} does it)")
    if isinstance(result, Rollout):
        reason, operation = _queue_rollout(commander, result, remote)
        if operation is not None:
            metrics.REGISTRY_EVENTS.labels("queued").inc()
            commander.audit.append(who=REGISTRY_IDENTITY, remote=remote, action="registry push",
                                   target=event.summary(), outcome="accepted",
                                   operation=operation.id,
                                   detail=f"services: {', '.join(operation.services)}")
            return {**answer, "result": "queued", "operation": operation.id}
        result = Ignored(event, reason)
    metrics.REGISTRY_EVENTS.labels("ignored").inc()
    commander.audit.append(who=REGISTRY_IDENTITY, remote=remote, action="registry notification",
                           target=event.summary(), outcome="ignored", detail=result.reason)
    return {**answer, "result": "ignored", "reason": result.reason}


def _queue_rollout(commander: Commander, rollout: Rollout,
                   remote: str | None) -> tuple[str, Operation | None]:
    """Queue the rollout unless it changes nothing; else why not."""
    platform = commander.platform
    try:
        deployed = platform.deployed()
        services: list[str] = []
        for name in rollout.names:
            services += [s for s in platform.members(name, deployed.config) if s not in services]
    except Refused as exc:
        return f"cannot roll out: {exc.message}", None
    members = tuple(services)
    with commander.submitting:
        if set(platform.pinned(members).values()) == {rollout.image}:
            return f"already deployed: {', '.join(members)} run {rollout.image}", None
        earlier = [op for op in commander.store.all()
                   if op.kind == "registry" and op.services == members
                   and op.state != "superseded"]
        if earlier and earlier[-1].image == rollout.image:
            return (f"the same push as {earlier[-1].id} ({earlier[-1].state}): one digest "
                    "makes one revision"), None
        description = f"commander: registry push {rollout.event.repository}@{rollout.event.digest}"
        operation = commander.queue_new("registry", description, REGISTRY_IDENTITY, remote,
                                        services=members, image=rollout.image)
        return "", operation
