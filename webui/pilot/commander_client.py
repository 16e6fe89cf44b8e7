"""Commander's HTTP API, as Pilot uses it: every change Pilot makes is a request here.

Two kinds of failure, told apart for the pages: CommanderUnavailable (cannot connect,
timed out, answered 5xx or not JSON: the page says Commander is down and why) and
CommanderRefused (a 4xx with Commander's own message: the page shows that message).
"""

from __future__ import annotations

from typing import Any

import requests

from pilot import metrics
from pilot.upstream import PlatformService, reason


class CommanderUnavailable(Exception):
    """Commander cannot be reached or failed to answer."""


class CommanderRefused(Exception):
    """Commander answered the request with a 4xx."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CommanderClient(PlatformService):
    url: str

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        super().__init__(url, timeout)
        self._token = token

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/api/v1/status")

    def releases(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/v1/releases").get("releases", []))

    def release(self, number: int) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/releases/{number}")

    def diff(self, old: int, new: int) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/releases/{old}/diff/{new}")

    def rollback(self, revision: int) -> dict[str, Any]:
        return self._call("POST", "/api/v1/rollback", {"revision": revision})

    def operation(self, operation_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/v1/operations/{operation_id}")

    def health(self) -> str | None:
        """None when Commander says it is healthy, else why not."""
        return self.probe("/health", "unhealthy")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            answer = self._sessions.get().request(
                method, self.url + path, json=body, timeout=(3, self.timeout),
                headers={"Authorization": f"Bearer {self._token}"})
        except requests.RequestException as exc:
            metrics.COMMANDER_CALLS.labels("unreachable").inc()
            raise CommanderUnavailable(f"Commander is unreachable at {self.url}: "
                                       f"{reason(exc)}") from None
        try:
            document = answer.json()
        except ValueError:
            document = None
        if answer.status_code == 401:
            metrics.COMMANDER_CALLS.labels("refused").inc()
            raise CommanderUnavailable("Commander refused Pilot's token (HTTP 401): the "
                                       "platform's commander-token secret differs from the "
                                       "one Pilot was given")
        if 400 <= answer.status_code < 500:
            metrics.COMMANDER_CALLS.labels("refused").inc()
            message = document.get("error") if isinstance(document, dict) else None
            raise CommanderRefused(answer.status_code,
                                   str(message or f"HTTP {answer.status_code}"))
        if answer.status_code >= 500 or not isinstance(document, dict):
            metrics.COMMANDER_CALLS.labels("failed").inc()
            detail = document.get("error") if isinstance(document, dict) else None
            raise CommanderUnavailable(
                f"Commander failed to answer {method} {path} (HTTP {answer.status_code}"
                + (f": {detail}" if detail else "") + ")")
        metrics.COMMANDER_CALLS.labels("ok").inc()
        return document
