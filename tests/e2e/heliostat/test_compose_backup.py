"""The dump taken before an upgrade changes postgres, and `rollback --restore-data`, on the
real engine with the platform's own postgres."""

import contextlib
import hashlib
import json
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.infra.compose_platforms import PlatformUnderTest

SERVICES = ("gateway", "registry", "postgres")


def write_config(platform: PlatformUnderTest, file: str, registry: str = "") -> Path:
    path = platform.directory / file
    path.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {platform.name}
        profile: compose
        gateway: {{http_port: {platform.port}}}
        images: {{registry: "{registry}"}}
        modules:
          clickstream: {{enabled: false}}
          pilot: {{enabled: false}}
          commander: {{enabled: false}}
          monitoring: {{enabled: false}}
        stores:
          postgres: {{mode: internal}}
          redis: {{mode: external, host: redis.invalid}}
          kafka: {{mode: external, bootstrap: ["kafka.invalid:9092"]}}
        """))
    return path


@pytest.fixture
def other_images(compose_engine: docker.DockerClient) -> Iterator[str]:
    """A registry prefix holding the same images: switching to it changes every service's
    image reference, postgres's included, and nothing else."""
    prefix = f"backup-{os.getpid()}.invalid"
    for name in SERVICES:
        compose_engine.images.get(f"heliostat/{name}:0.1.0").tag(f"{prefix}/heliostat/{name}",
                                                                 "0.1.0")
    yield prefix
    for name in SERVICES:
        with contextlib.suppress(docker.errors.ImageNotFound):
            compose_engine.images.remove(f"{prefix}/heliostat/{name}:0.1.0")


def sql(client: docker.DockerClient, platform: PlatformUnderTest, statement: str,
        database: str = "notes") -> str:
    container = client.containers.get(f"{platform.name}-postgres-0")
    result = container.exec_run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                                 "-h", "/var/run/postgresql", "-U", "postgres", "-d", database,
                                 "-c", statement])
    assert result.exit_code == 0, result.output.decode()
    return result.output.decode().strip()


def history(platform: PlatformUnderTest) -> list[dict]:
    return json.loads(platform.run("history", "--output", "json").stdout)


def test_an_upgrade_of_postgres_dumps_it_and_a_rollback_can_restore_it(
        test_platform: PlatformUnderTest, compose_engine: docker.DockerClient,
        other_images: str):
    platform = test_platform
    platform.config = write_config(platform, "platform.yaml")
    installed = platform.run("install")
    assert installed.returncode == 0, installed.stderr
    sql(compose_engine, platform, "CREATE DATABASE notes", database="postgres")
    sql(compose_engine, platform, "CREATE TABLE note (text text); "
                                  "INSERT INTO note VALUES ('before the upgrade')")

    nothing_dumped = platform.run("rollback", "1", "--restore-data", "--yes")
    assert nothing_dumped.returncode == 2
    assert "no revision after 1 changed a service that is backed up" in nothing_dumped.stderr

    upgraded = platform.run("upgrade", config=write_config(platform, "moved.yaml",
                                                           other_images))
    assert upgraded.returncode == 0, upgraded.stderr
    revision = history(platform)[1]
    backup = revision["backups"]["postgres"]
    blob = platform.ledger / backup["blob"]
    assert blob.stat().st_mode & 0o077 == 0
    content = blob.read_bytes()
    assert hashlib.sha256(content).hexdigest() == backup["sha256"]
    assert backup["bytes"] == len(content)
    assert b"before the upgrade" in content
    sql(compose_engine, platform, "INSERT INTO note VALUES ('after the upgrade')")

    # A rollback without --restore-data leaves the data as it is.
    kept = platform.run("rollback", "1")
    assert kept.returncode == 0, kept.stderr
    assert sql(compose_engine, platform, "SELECT count(*) FROM note") == "2"

    without_terminal = platform.run("rollback", "1", "--restore-data")
    assert without_terminal.returncode == 2 and "pass --yes" in without_terminal.stderr

    restored = platform.run("rollback", "1", "--restore-data", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert "the dump taken" in restored.stderr and "before revision 2" in restored.stderr
    assert sql(compose_engine, platform, "SELECT text FROM note") == "before the upgrade"
    last = history(platform)[-1]
    assert last["status"] == "deployed"
    assert last["description"] == "rollback to 1 with the data of postgres from before revision 2"


def test_a_dump_that_fails_stops_the_upgrade_before_anything_changes(
        test_platform: PlatformUnderTest, compose_engine: docker.DockerClient,
        other_images: str):
    platform = test_platform
    platform.config = write_config(platform, "platform.yaml")
    assert platform.run("install").returncode == 0
    postgres = compose_engine.containers.get(f"{platform.name}-postgres-0")
    removed = postgres.exec_run(["rm", "/usr/local/bin/heliostat-postgres-backup"], user="root")
    assert removed.exit_code == 0, removed.output

    failed = platform.run("upgrade", config=write_config(platform, "moved.yaml", other_images))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr
    assert "backing up postgres before changing it failed" in failed.stderr
    assert "nothing was changed" in failed.stderr
    assert compose_engine.containers.get(postgres.name).id == postgres.id
    assert [r["status"] for r in history(platform)] == ["deployed", "rolled-back"]
    assert history(platform)[1]["backups"] == {}
