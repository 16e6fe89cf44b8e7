"""Text from requests before it reaches Postgres: control characters (NUL above all,
which a text column cannot hold) are refused in what people type and removed from what
clients send in headers."""

from __future__ import annotations


def control_characters(text: str) -> bool:
    """Whether `text` holds a control character (NUL, a line break, ...)."""
    return any(_control(c) for c in text)


def printable(text: str | None, limit: int) -> str | None:
    """`text` without its control characters, cut to `limit` characters."""
    if text is None:
        return None
    return "".join(c for c in text if not _control(c))[:limit]


def _control(char: str) -> bool:
    return ord(char) < 32 or 0x7F <= ord(char) < 0xA0
