"""Migrations and the admin CLI against a real Postgres."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg

from clickstream import storage
from clickstream.migrate import available_migrations, migrate
from tests.integration.clickstream.pipeline import SERVICES


def cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PYTHONPATH": str(SERVICES), "POSTGRES_DSN": dsn, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "clickstream", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_migrations_apply_once_in_order(pg_database: str) -> None:
    assert [m.version for m in migrate(pg_database)] == [
        m.version for m in available_migrations()]
    assert migrate(pg_database) == []
    with psycopg.connect(pg_database) as conn:
        versions = conn.execute(
            "SELECT version FROM clickstream.schema_version ORDER BY version").fetchall()
    assert [v for (v,) in versions] == [m.version for m in available_migrations()]


def test_admin_cli_manages_apps_keys_and_destinations(pg_database: str, tmp_path) -> None:
    assert cli(pg_database, "migrate").returncode == 0
    created = cli(pg_database, "admin", "app", "create", "shop", "--output", "json")
    assert created.returncode == 0, created.stderr
    app = json.loads(created.stdout)
    with psycopg.connect(pg_database) as conn:
        assert storage.app_for_write_key(conn, app["write_key"]).name == "shop"
        stored = conn.execute("SELECT key_hash, key_prefix FROM clickstream.write_keys").fetchone()
    assert app["write_key"].encode() not in stored[0]  # only the hash is kept

    duplicate = cli(pg_database, "admin", "app", "create", "shop")
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr

    secret_file = tmp_path / "secret"
    secret_file.write_text("very-secret\n")
    destination = cli(pg_database, "admin", "destination", "create", "shop", "--name", "Hook",
                      "--kind", "webhook", "--setting", "url=https://example.test/h",
                      "--setting", "batch_size=20", "--secret-file", str(secret_file),
                      "--types", "track,identify", "--output", "json")
    assert destination.returncode == 0, destination.stderr
    assert "very-secret" not in destination.stdout
    shown = json.loads(destination.stdout)
    assert shown["settings"] == {"url": "https://example.test/h", "batch_size": 20}
    assert shown["filters"] == {"types": ["track", "identify"]}
    assert shown["secret"] == "set"

    bad = cli(pg_database, "admin", "destination", "create", "shop", "--name", "W",
              "--kind", "warehouse")
    assert bad.returncode == 2 and "dsn" in bad.stderr

    assert cli(pg_database, "admin", "destination", "disable", str(shown["id"])).returncode == 0
    listed = json.loads(cli(pg_database, "admin", "destination", "list", "--output",
                            "json").stdout)
    assert [d["enabled"] for d in listed] == [False]
    assert "very-secret" not in cli(pg_database, "admin", "destination", "list").stdout

    rotated = json.loads(cli(pg_database, "admin", "key", "add", "shop", "--output",
                             "json").stdout)
    keys = json.loads(cli(pg_database, "admin", "key", "list", "shop", "--output", "json").stdout)
    assert len(keys) == 2
    assert cli(pg_database, "admin", "key", "revoke", str(keys[0]["id"])).returncode == 0
    with psycopg.connect(pg_database) as conn:
        assert storage.app_for_write_key(conn, app["write_key"]) is None
        assert storage.app_for_write_key(conn, rotated["write_key"]).name == "shop"
    missing = cli(pg_database, "replay", "--destination", "999")
    assert missing.returncode == 2 and "no destination 999" in missing.stderr
