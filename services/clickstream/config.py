"""Settings, read only from environment variables.

Secrets arrive as mounted files (``*_PASSWORD_FILE``); they are read here and never
logged. ``POSTGRES_DSN`` overrides the individual ``POSTGRES_*`` variables (tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from psycopg.conninfo import make_conninfo


def _read_secret_file(path: str | None) -> str | None:
    if not path:
        return None
    return Path(path).read_text().strip()


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    postgres_dsn: str = field(default="", repr=False)
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    topic_prefix: str = "clickstream"
    log_level: str = "INFO"
    metrics_port: int = 9100
    #: Partitions given to topics this service creates (raw and per-destination).
    topic_partitions: int = 6
    #: How long the Event API trusts a write key it checked before checking it again
    #: (changes reach it at once by notification; this bounds a missed one).
    write_key_cache_seconds: float = 60.0
    #: How long the Event API's producer waits to fill a batch: the events of
    #: concurrent requests then travel to Kafka together (bench/clickstream).
    producer_linger_ms: float = 5.0

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            kafka_bootstrap=env.get("KAFKA_BOOTSTRAP", cls.kafka_bootstrap),
            postgres_dsn=_postgres_dsn(env),
            redis_url=_redis_url(env),
            topic_prefix=env.get("CLICKSTREAM_TOPIC_PREFIX", cls.topic_prefix),
            log_level=env.get("LOG_LEVEL", cls.log_level).upper(),
            metrics_port=int(env.get("METRICS_PORT", cls.metrics_port)),
            topic_partitions=int(env.get("CLICKSTREAM_TOPIC_PARTITIONS", cls.topic_partitions)),
            write_key_cache_seconds=float(env.get("CLICKSTREAM_WRITE_KEY_CACHE_SECONDS",
                                                  cls.write_key_cache_seconds)),
            producer_linger_ms=float(env.get("CLICKSTREAM_PRODUCER_LINGER_MS",
                                             cls.producer_linger_ms)),
        )


def _postgres_dsn(env: os._Environ[str] | dict[str, str]) -> str:
    if env.get("POSTGRES_DSN"):
        return env["POSTGRES_DSN"]
    params = {
        "host": env.get("POSTGRES_HOST", "127.0.0.1"),
        "port": env.get("POSTGRES_PORT", "5432"),
        "dbname": env.get("POSTGRES_DB", "clickstream"),
        "user": env.get("POSTGRES_USER", "clickstream"),
        # `require` or stricter for an external Postgres reached over the network.
        "sslmode": env.get("POSTGRES_SSLMODE", "prefer"),
    }
    password = _read_secret_file(env.get("POSTGRES_PASSWORD_FILE"))
    if password is not None:
        params["password"] = password
    return make_conninfo(**params)


def _redis_url(env: os._Environ[str] | dict[str, str]) -> str:
    url = env.get("REDIS_URL", Settings.redis_url)
    password = _read_secret_file(env.get("REDIS_PASSWORD_FILE"))
    if password is None:
        return url
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f":{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
