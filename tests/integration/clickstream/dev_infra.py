"""Stand-ins for the test bed's fixtures, pointing at servers a developer runs by hand.

Enabled with ``CLICKSTREAM_DEV_INFRA=1``; ``CLICKSTREAM_DEV_POSTGRES`` (superuser DSN),
``CLICKSTREAM_DEV_REDIS`` (URL), ``CLICKSTREAM_DEV_KAFKA`` (bootstrap) and
``CLICKSTREAM_DEV_KAFKA_START`` / ``CLICKSTREAM_DEV_KAFKA_PIDFILE`` (to stop and start it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis
from confluent_kafka.admin import AdminClient, NewTopic


class DevKafka:
    def __init__(self) -> None:
        self.bootstrap = os.environ["CLICKSTREAM_DEV_KAFKA"]
        self._pidfile = os.environ.get("CLICKSTREAM_DEV_KAFKA_PIDFILE", "")
        self._start_cmd = os.environ.get("CLICKSTREAM_DEV_KAFKA_START", "")

    def _pid(self) -> int:
        with open(self._pidfile) as f:
            return int(f.read())

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        pid = self._pid()
        os.kill(pid, signum)
        for _ in range(300):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        try:
            os.kill(self._pid(), 0)
            return True
        except (ProcessLookupError, FileNotFoundError):
            return False

    def start(self) -> None:
        if not self.running:
            subprocess.run(self._start_cmd, shell=True, check=True)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                admin.list_topics(timeout=2)
                return
            except Exception:
                time.sleep(0.5)
        raise RuntimeError("dev Kafka did not come up")

    def create_topic(self, name: str, partitions: int = 1) -> str:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
        return name


class DevPostgres:
    def __init__(self) -> None:
        self.dsn = os.environ["CLICKSTREAM_DEV_POSTGRES"]

    def dsn_for(self, database: str) -> str:
        return re.sub(r"/[^/?]*(\?|$)", f"/{database}\\1", self.dsn, count=1)


@pytest.fixture(scope="session")
def postgres() -> DevPostgres:
    return DevPostgres()


@pytest.fixture
def pg_database(postgres: DevPostgres) -> Iterator[str]:
    name = f"cs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield postgres.dsn_for(name)
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def redis_url() -> str:
    url = os.environ["CLICKSTREAM_DEV_REDIS"]
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def kafka() -> DevKafka:
    return DevKafka()


@pytest.fixture
def kafka_topic_prefix(kafka: DevKafka, request: pytest.FixtureRequest) -> str:
    if not kafka.running:
        kafka.start()
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:80]
    return f"{name}-{uuid.uuid4().hex[:8]}."
