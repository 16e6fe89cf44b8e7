"""Jinja filters of Pilot's templates."""

from __future__ import annotations

from flask import Flask


def duration(seconds: object) -> str:
    """`3d 4h`, `5h 12m`, `7m 3s`, `42s`."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        return "\u2013"  # an en dash, as the tables show for nothing
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def register(app: Flask) -> None:
    app.jinja_env.filters["duration"] = duration
