#!/usr/bin/python3 -I
"""Print one connection URL of Airflow, password included, for Airflow's `*_CMD` options.

Airflow runs this when it reads the option, so the password goes from its mounted file
straight into Airflow's memory: never into an environment variable or a log line.

    airflow-url sql_alchemy_conn | sql_alchemy_conn_async | result_backend | broker_url
"""

from __future__ import annotations

import os
import sys
from urllib.parse import quote, urlsplit, urlunsplit


class Missing(Exception):
    """A setting the URL needs is not there; the message names it."""


def setting(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise Missing(f"{name} is not set")
    return value


def secret(variable: str) -> str:
    """The first line of the file the variable names; empty when it names none."""
    path = os.environ.get(variable, "")
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8") as source:
            return source.readline().rstrip("\r\n")
    except OSError as error:
        raise Missing(f"{variable}: cannot read {path}: {error.strerror}") from None


def postgres(scheme: str, ssl_parameter: str) -> str:
    host = setting("POSTGRES_HOST")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    user = quote(setting("POSTGRES_USER"), safe="")
    password = quote(secret("POSTGRES_PASSWORD_FILE"), safe="")
    database = quote(setting("POSTGRES_DB"), safe="")
    port = os.environ.get("POSTGRES_PORT") or "5432"
    sslmode = os.environ.get("POSTGRES_SSLMODE") or "prefer"
    credentials = f"{user}:{password}" if password else user
    return f"{scheme}://{credentials}@{host}:{port}/{database}?{ssl_parameter}={sslmode}"


def redis() -> str:
    url = urlsplit(setting("REDIS_URL"))
    password = secret("REDIS_PASSWORD_FILE")
    if not password or "@" in url.netloc:
        return url.geturl()
    return urlunsplit(url._replace(netloc=f":{quote(password, safe='')}@{url.netloc}"))


URLS = {
    # psycopg2 named, since SQLAlchemy's default PostgreSQL driver differs between releases.
    "sql_alchemy_conn": lambda: postgres("postgresql+psycopg2", "sslmode"),
    # asyncpg takes libpq's sslmode values as `ssl` and refuses `sslmode` from SQLAlchemy.
    "sql_alchemy_conn_async": lambda: postgres("postgresql+asyncpg", "ssl"),
    "result_backend": lambda: postgres("db+postgresql+psycopg2", "sslmode"),
    "broker_url": redis,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in URLS:
        print(f"usage: airflow-url {{{'|'.join(URLS)}}}", file=sys.stderr)
        return 2
    try:
        url = URLS[argv[0]]()
    except Missing as error:
        print(f"airflow-url {argv[0]}: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(url)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
