"""What a destination kind implements: deliver a batch of events, or raise."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from clickstream.storage import Destination


@dataclass
class RoutedEvent:
    """One event from a destination topic: the JSON as the Event API stored it."""

    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    _parsed: dict[str, Any] | None = None

    @property
    def event(self) -> dict[str, Any]:
        if self._parsed is None:
            self._parsed = json.loads(self.value)
        return self._parsed


class Sink(Protocol):
    def batch_size(self, destination: Destination) -> int:
        """Most events handed to one :meth:`deliver` call for this destination."""

    def linger_seconds(self, destination: Destination) -> float:
        """How long a partial batch may wait for more events (0: send at once)."""

    def deliver(self, destination: Destination, events: list[RoutedEvent]) -> None:
        """Deliver every event or raise :class:`clickstream.retry.DeliveryError` (with
        ``rejected`` when only some events were refused, the rest delivered).

        Must be safe to call again with the same events: delivery is at least once.
        Called from several threads at once, for different partitions.
        """
