"""Which of an app's destinations get an event: the event's ``integrations`` map,
then the destination's filters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clickstream.storage import Destination


def integration_enabled(integrations: Any, name: str) -> bool:
    """Segment's rule: the destination's own entry wins, else ``All``, else on.

    An entry may be an object of per-destination options, which means "on".
    """
    if not isinstance(integrations, dict):
        return True
    value = integrations.get(name, integrations.get("All", True))
    return value is not False


def passes_filters(event: dict[str, Any], filters: dict[str, Any]) -> bool:
    """``types`` limits event types; ``events`` limits track events by name.

    Empty or missing lists let everything through. Non-track events are not affected
    by ``events`` (use ``types`` to drop them).
    """
    types = filters.get("types")
    if types and event.get("type") not in types:
        return False
    names = filters.get("events")
    return not (names and event.get("type") == "track" and event.get("event") not in names)


def select_destinations(event: dict[str, Any],
                        destinations: Iterable[Destination]) -> list[Destination]:
    integrations = event.get("integrations")
    return [
        d for d in destinations
        if integration_enabled(integrations, d.name) and passes_filters(event, d.filters)
    ]
