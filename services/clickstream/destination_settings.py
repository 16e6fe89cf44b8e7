"""Per-kind destination settings: defaults, validation and the retry budget.

Settings live as JSON in ``destinations.settings``; these classes turn them into
typed values and reject what a worker could not use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class InvalidSettings(ValueError):
    pass


#: How a warehouse destination is loaded (WarehouseSettings.load).
LOADS = ("stream", "batch")


@dataclass(frozen=True)
class RetryPolicy:
    """How long a destination keeps trying one event before dead-lettering it."""

    max_attempts: int = 8
    retry_window_seconds: float = 3600.0
    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 60.0


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    #: 1 posts each event on its own; more posts ``{"batch": [...]}`` of up to that many.
    batch_size: int = 1
    timeout_seconds: float = 10.0
    headers: dict[str, str] | None = None
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class WarehouseSettings:
    dsn: str
    schema: str = "clickstream"
    batch_size: int = 1000
    flush_seconds: float = 1.0
    #: "stream": the warehouse workers load events as they come; "batch": Airflow's
    #: warehouse batch DAG loads them a time window at a time (clickstream.batch_load).
    load: str = "stream"
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class RedisSettings:
    #: Empty: the platform's own Redis (``REDIS_URL``).
    url: str = ""
    key_prefix: str = "clickstream"
    retry: RetryPolicy = RetryPolicy()


SETTINGS_BY_KIND = {"webhook": WebhookSettings, "warehouse": WarehouseSettings,
                    "redis": RedisSettings}


def parse_settings(kind: str, raw: dict[str, Any]) -> Any:
    """Typed settings for a destination kind, or :class:`InvalidSettings`."""
    try:
        cls = SETTINGS_BY_KIND[kind]
    except KeyError:
        raise InvalidSettings(f"unknown destination kind {kind!r}") from None
    retry_names = {f.name for f in fields(RetryPolicy)}
    own_names = {f.name for f in fields(cls)} - {"retry"}
    unknown = set(raw) - retry_names - own_names
    if unknown:
        raise InvalidSettings(f"unknown {kind} settings: {', '.join(sorted(unknown))}")
    try:
        retry = RetryPolicy(**{k: _number(k, v) for k, v in raw.items() if k in retry_names})
        own = {k: v for k, v in raw.items() if k in own_names}
        settings = cls(**own, retry=retry)
    except TypeError as exc:
        raise InvalidSettings(f"{kind} settings: {exc}") from None
    _check(settings)
    return settings


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidSettings(f"{name} must be a non-negative number, not {value!r}")
    return value


def _check(settings: Any) -> None:
    scheme = urlsplit(str(getattr(settings, "url", ""))).scheme
    if isinstance(settings, WebhookSettings) and scheme not in ("http", "https"):
        # The scheme only: the URL may carry credentials, and this message is logged.
        shown = f"{scheme}:" if scheme else "without a scheme"
        raise InvalidSettings(f"webhook url must be http(s), not {shown}")
    if isinstance(settings, WarehouseSettings) and not (
        settings.schema.isidentifier() and settings.schema == settings.schema.lower()
    ):
        raise InvalidSettings(f"warehouse schema must be a lowercase identifier, "
                              f"not {settings.schema!r}")
    if isinstance(settings, WarehouseSettings) and settings.load not in LOADS:
        raise InvalidSettings(f"warehouse load must be one of {', '.join(LOADS)}, "
                              f"not {settings.load!r}")
    batch_size = getattr(settings, "batch_size", 1)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidSettings(f"batch_size must be a positive integer, not {batch_size!r}")
    if settings.retry.max_attempts < 1:
        raise InvalidSettings("max_attempts must be at least 1")


_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_CONNINFO_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def mask_password(value: Any) -> Any:
    """A DSN or URL with its password replaced, for showing settings."""
    if not isinstance(value, str):
        return value
    return _CONNINFO_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", value))


def shown_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A destination's settings as the CLI and Pilot show them: passwords of `dsn` and
    `url` replaced, and the values of the URL's query (a token) and of webhook `headers`
    (bearer tokens, API keys)."""
    shown: dict[str, Any] = {}
    for name, value in settings.items():
        if name == "url" and isinstance(value, str):
            shown[name] = _mask_query(mask_password(value))
        elif name == "dsn":
            shown[name] = mask_password(value)
        elif name == "headers" and isinstance(value, dict):
            shown[name] = {header: "***" for header in value}
        else:
            shown[name] = value
    return shown


def _mask_query(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    names = [pair.partition("=")[0] for pair in parts.query.split("&")]
    return urlunsplit(parts._replace(query="&".join(f"{n}=***" for n in names)))


def loaded_in_batches(kind: str, settings: dict[str, Any]) -> bool:
    """Whether a destination's events wait in its topic for the batch load."""
    return kind == "warehouse" and settings.get("load") == "batch"
