"""How the Event API ends a request with an error: raised anywhere in handling it,
answered with the status, the `code` and message Segment's libraries read, and counted
under its reason."""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """Ends a request with an error status; ``reason`` labels the rejection metric and is
    the body's ``code``."""

    def __init__(self, status: int, reason: str, message: str,
                 errors: list[dict[str, Any]] | None = None,
                 retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.errors = errors
        self.retry_after = retry_after
