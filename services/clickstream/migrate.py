"""Ordered SQL migrations with a schema-version table.

Files in ``migrations/`` are named ``NNNN_description.sql`` and applied in order,
each in its own transaction together with its row in ``clickstream.schema_version``.
An advisory lock makes concurrent runs (several replicas starting at once) safe.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every process that migrates.
_LOCK_ID = 0x636C6B73


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("clickstream.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def applied_versions(conn: psycopg.Connection) -> set[int]:
    rows = conn.execute("SELECT version FROM clickstream.schema_version").fetchall()
    return {row[0] for row in rows}


def migrate(dsn: str) -> list[Migration]:
    """Apply every migration not applied yet; return the ones applied now."""
    applied_now = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS clickstream")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS clickstream.schema_version ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = applied_versions(conn)
            for migration in available_migrations():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO clickstream.schema_version (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("migration applied", extra={"version": migration.version,
                                                     "migration": migration.name})
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied_now
