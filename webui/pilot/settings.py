"""Pilot's settings, from the environment its module.yaml gives it.

Secrets arrive as mounted files (`*_FILE`); they are read here and never logged.
`POSTGRES_DSN` overrides the individual `POSTGRES_*` variables (tests, development).
The clickstream module's database is on the same Postgres server, under its own name,
user and password (`CLICKSTREAM_POSTGRES_*`, or `CLICKSTREAM_POSTGRES_DSN`); without
them Pilot takes the module as not enabled, and its apps page says so.

The live event debugger reads the clickstream router's recent-events stream from the
platform's Redis (`REDIS_URL`, `REDIS_PASSWORD_FILE`) under the module's prefix
(`CLICKSTREAM_TOPIC_PREFIX`, which also names its Kafka topics); replaying dead letters
needs its Kafka (`KAFKA_BOOTSTRAP`, `CLICKSTREAM_TOPIC_PARTITIONS`).

With the monitoring module, the charts read Prometheus (`PROMETHEUS_URL`, scraping every
`PROMETHEUS_SCRAPE_SECONDS`) and the overview lists Alertmanager's active alerts
(`ALERTMANAGER_URL`); with the Airflow module, the overview shows its health from the API
server (`AIRFLOW_API_URL`) and its workers from Flower (`FLOWER_URL`), and links to its UI
(`AIRFLOW_LINK`, a path on the gateway). Empty or unset, that part says it is not enabled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from psycopg.conninfo import make_conninfo

from pilot.passwords import DEFAULT_COST, ScryptCost

CookieSecure = Literal["auto", "always", "never"]
COOKIE_SECURE_MODES: tuple[CookieSecure, ...] = ("auto", "always", "never")


class SettingsError(Exception):
    """A setting is missing or unreadable; Pilot cannot start."""


@dataclass(frozen=True)
class LoginLimits:
    """Failed logins allowed in a sliding window before further tries are refused (429)."""

    per_account: int = 5
    per_address: int = 20
    window_seconds: int = 900


@dataclass(frozen=True)
class Settings:
    postgres_dsn: str = field(repr=False)
    secret_key: str = field(repr=False)
    commander_url: str
    commander_token: str = field(repr=False)
    admin_password: str | None = field(default=None, repr=False)
    #: The clickstream module's database; None when the module is not enabled.
    clickstream_dsn: str | None = field(default=None, repr=False)
    session_hours: int = 12
    #: `auto`: Secure when the request came over https (directly or as the proxy's
    #: X-Forwarded-Proto says); `always`; `never` (plain-http development only).
    cookie_secure: CookieSecure = "auto"
    #: Reverse proxies in front of Pilot whose X-Forwarded-* headers are believed
    #: (the platform's gateway: 1).
    trusted_proxies: int = 1
    login_limits: LoginLimits = LoginLimits()
    password_cost: ScryptCost = DEFAULT_COST
    commander_timeout: float = 10.0
    #: How long start-up waits for Postgres before giving up.
    startup_timeout: float = 60.0
    log_level: str = "INFO"
    #: The platform's Redis, for the recent-events stream; None: no live debugger.
    redis_url: str | None = field(default=None, repr=False)
    #: The clickstream module's Kafka, for replaying dead letters; None: no replay.
    kafka_bootstrap: str | None = None
    #: The clickstream services' CLICKSTREAM_TOPIC_PREFIX: their topics and Redis keys.
    clickstream_prefix: str = "clickstream"
    #: Partitions of the topics a replay creates when missing (as the services do).
    clickstream_partitions: int = 6
    #: How long one live-event stream lasts before the browser reconnects (resuming
    #: with Last-Event-ID), so that no gunicorn thread is held for ever: below
    #: gunicorn's graceful_timeout (20 s), so a stopping worker finishes its streams.
    event_stream_seconds: float = 15.0
    #: Live-event streams one Pilot process serves at once; more are refused (503).
    event_streams: int = 4
    #: The monitoring module's Prometheus and Alertmanager; None when not enabled.
    prometheus_url: str | None = None
    prometheus_scrape_seconds: int = 15
    alertmanager_url: str | None = None
    #: The Airflow module's API server and Flower (None when not enabled), and where a
    #: browser opens its UI.
    airflow_api_url: str | None = None
    flower_url: str | None = None
    airflow_link: str = "/airflow/"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            postgres_dsn=_postgres_dsn(env),
            clickstream_dsn=_clickstream_dsn(env),
            secret_key=_secret(env, "PILOT_SECRET_KEY_FILE", required=True) or "",
            admin_password=_secret(env, "PILOT_ADMIN_PASSWORD_FILE", required=False),
            commander_url=_required(env, "COMMANDER_URL").rstrip("/"),
            commander_token=_secret(env, "COMMANDER_TOKEN_FILE", required=True) or "",
            session_hours=_whole(env, "PILOT_SESSION_HOURS", 12, 1, 720),
            cookie_secure=_cookie_secure(env.get("PILOT_COOKIE_SECURE", "auto")),
            trusted_proxies=_whole(env, "PILOT_TRUSTED_PROXIES", 1, 0, 5),
            login_limits=LoginLimits(
                per_account=_whole(env, "PILOT_LOGIN_FAILURES_PER_ACCOUNT", 5, 1, 1000),
                per_address=_whole(env, "PILOT_LOGIN_FAILURES_PER_ADDRESS", 20, 1, 10000),
                window_seconds=_whole(env, "PILOT_LOGIN_WINDOW_SECONDS", 900, 10, 86400)),
            startup_timeout=float(_whole(env, "PILOT_STARTUP_TIMEOUT", 60, 0, 3600)),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            redis_url=_redis_url(env),
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP") or None,
            clickstream_prefix=env.get("CLICKSTREAM_TOPIC_PREFIX") or "clickstream",
            clickstream_partitions=_whole(env, "CLICKSTREAM_TOPIC_PARTITIONS", 6, 1, 256),
            event_stream_seconds=float(_whole(env, "PILOT_EVENT_STREAM_SECONDS", 15, 1, 60)),
            # Half of a process's threads at most (gunicorn_conf.py reads PILOT_THREADS
            # too): the other half keep serving pages while debuggers are open.
            event_streams=_whole(env, "PILOT_EVENT_STREAMS",
                                 max(1, _whole(env, "PILOT_THREADS", 8, 1, 256) // 2), 1, 256),
            prometheus_url=_url(env, "PROMETHEUS_URL"),
            prometheus_scrape_seconds=_whole(env, "PROMETHEUS_SCRAPE_SECONDS", 15, 1, 3600),
            alertmanager_url=_url(env, "ALERTMANAGER_URL"),
            airflow_api_url=_url(env, "AIRFLOW_API_URL"),
            flower_url=_url(env, "FLOWER_URL"),
            airflow_link=env.get("AIRFLOW_LINK") or "/airflow/",
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise SettingsError(f"{name} is not set")
    return value


def _secret(env: Mapping[str, str], variable: str, required: bool) -> str | None:
    name = env.get(variable, "")
    if not name:
        if required:
            raise SettingsError(f"{variable} is not set")
        return None
    path = Path(name)
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise SettingsError(f"{variable}: {path} is empty")
    return value


def _url(env: Mapping[str, str], name: str) -> str | None:
    """An http(s) URL of a service of the platform, or None when empty (not enabled)."""
    raw = env.get(name, "")
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name} must be an http:// or https:// URL, not {raw!r}")
    return raw.rstrip("/")


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise SettingsError(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


def _cookie_secure(raw: str) -> CookieSecure:
    for mode in COOKIE_SECURE_MODES:
        if raw.lower() == mode:
            return mode
    raise SettingsError(f"PILOT_COOKIE_SECURE must be one of {', '.join(COOKIE_SECURE_MODES)}, "
                        f"not {raw!r}")


def _postgres_dsn(env: Mapping[str, str]) -> str:
    if env.get("POSTGRES_DSN"):
        return env["POSTGRES_DSN"]
    return _conninfo(env, env.get("POSTGRES_DB", "pilot"), env.get("POSTGRES_USER", "pilot"),
                     "POSTGRES_PASSWORD_FILE")


def _clickstream_dsn(env: Mapping[str, str]) -> str | None:
    if env.get("CLICKSTREAM_POSTGRES_DSN"):
        return env["CLICKSTREAM_POSTGRES_DSN"]
    database = env.get("CLICKSTREAM_POSTGRES_DB", "")
    if not database:
        return None
    return _conninfo(env, database, _required(env, "CLICKSTREAM_POSTGRES_USER"),
                     "CLICKSTREAM_POSTGRES_PASSWORD_FILE")


def _conninfo(env: Mapping[str, str], database: str, user: str, password_file: str) -> str:
    """A DSN for `database` on the platform's Postgres (POSTGRES_HOST, _PORT, _SSLMODE)."""
    params = {
        "host": env.get("POSTGRES_HOST", "127.0.0.1"),
        "port": env.get("POSTGRES_PORT", "5432"),
        "dbname": database,
        "user": user,
        "sslmode": env.get("POSTGRES_SSLMODE", "prefer"),
    }
    password = _secret(env, password_file, required=False)
    if password is not None:
        params["password"] = password
    return make_conninfo(**params)


def _redis_url(env: Mapping[str, str]) -> str | None:
    """REDIS_URL with the password of REDIS_PASSWORD_FILE in it, as the clickstream
    services build theirs; None when REDIS_URL is empty."""
    url = env.get("REDIS_URL", "")
    if not url:
        return None
    password = _secret(env, "REDIS_PASSWORD_FILE", required=False)
    if password is None:
        return url
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f":{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
