"""Pilot's schema, and its first account, made at start-up.

Files in `migrations/` are named `NNNN_description.sql` and applied in order, each in
its own transaction with its row in `pilot.schema_version`. A session-level advisory
lock is held throughout, so replicas (and gunicorn masters) starting at once take turns:
the first migrates and creates `admin`, the others find both done.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from pilot.accounts import create_first_admin
from pilot.database import Database, DatabaseUnavailable

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every Pilot process ("pilo").
LOCK_ID = 0x70696C6F


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class Prepared:
    applied: list[int]
    admin_created: bool


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("pilot.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def prepare_database(database: Database, admin_hash: Callable[[], str] | None) -> Prepared:
    """Migrate, then create `admin` with the password `admin_hash()` hashes if there is no
    such account yet (an existing one is never changed)."""
    try:
        with psycopg.connect(database.dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_ID,))
            try:
                applied = _migrate(conn)
                created = False
                if admin_hash is not None:
                    with conn.transaction():
                        created = create_first_admin(conn, admin_hash)
                    if created:
                        log.info("account admin created from PILOT_ADMIN_PASSWORD_FILE")
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_ID,))
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(str(exc).strip().splitlines()[0]) from None
    return Prepared(applied, created)


def _migrate(conn: psycopg.Connection[Any]) -> list[int]:
    conn.execute("CREATE SCHEMA IF NOT EXISTS pilot")
    conn.execute("CREATE TABLE IF NOT EXISTS pilot.schema_version ("
                 " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    done = {row[0] for row in conn.execute("SELECT version FROM pilot.schema_version")}
    applied = []
    for migration in available_migrations():
        if migration.version in done:
            continue
        with conn.transaction():
            conn.execute(migration.sql)
            conn.execute("INSERT INTO pilot.schema_version (version, name) VALUES (%s, %s)",
                         (migration.version, migration.name))
        log.info("migration applied", extra={"version": migration.version,
                                             "migration": migration.name})
        applied.append(migration.version)
    return applied
