"""Running the clickstream processes for a test: the Event API under gunicorn, the
router and the workers, each a real OS process with the test's configuration."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import requests
from confluent_kafka import Consumer, TopicPartition

from clickstream import storage

SERVICES = Path(__file__).resolve().parents[3] / "services"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          start_new_session=True)
        return self

    def signal(self, signum: int) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen:
            self.popen.wait(10)

    def stop(self, timeout: float = 20) -> None:
        self.signal(signal.SIGTERM)
        if self.popen:
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class Pipeline:
    """One test's clickstream: a migrated database, a topic prefix, processes."""

    def __init__(self, dsn: str, bootstrap: str, redis_url: str, prefix: str,
                 log_dir: Path) -> None:
        self.dsn = dsn
        self.bootstrap = bootstrap
        self.redis_url = redis_url
        self.prefix = prefix
        self.log_dir = log_dir
        self.processes: list[Process] = []
        self.api_url = ""

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(SERVICES),
            "POSTGRES_DSN": self.dsn,
            "KAFKA_BOOTSTRAP": self.bootstrap,
            "REDIS_URL": self.redis_url,
            "CLICKSTREAM_TOPIC_PREFIX": self.prefix,
            "CLICKSTREAM_TOPIC_PARTITIONS": "4",
            "LOG_LEVEL": "INFO",
        }
        env.update(extra)
        return env

    def spawn(self, name: str, args: list[str], **extra: str) -> Process:
        env = self.env(METRICS_PORT=str(free_port()), **extra)
        process = Process(name, [sys.executable, "-m", "clickstream", *args], env, self.log_dir)
        self.processes.append(process.start())
        return process

    def router(self, name: str = "router", **extra: str) -> Process:
        return self.spawn(name, ["router"], CLICKSTREAM_ROUTER_ID=f"{self.prefix}-{name}",
                          **extra)

    def worker(self, kind: str, **extra: str) -> Process:
        return self.spawn(f"worker-{kind}", ["worker", "--kind", kind], **extra)

    def event_api(self, workers: int = 1, **extra: str) -> Process:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}"
        env = self.env(EVENT_API_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY=str(workers),
                       **extra)
        process = Process("event-api", [sys.executable, "-m", "clickstream", "event-api"],
                          env, self.log_dir)
        self.processes.append(process.start())
        self.wait_ready(process)
        return process

    def wait_ready(self, process: Process, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.api_url + "/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if process.popen.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"Event API not ready:\n{process.log_tail()}")

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop(timeout=10)

    # -- data model -----------------------------------------------------------------

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn, autocommit=True)

    def create_app(self, name: str = "shop", rate_limit: int | None = None) -> tuple[int, str]:
        with self.connect() as conn:
            app = storage.create_app(conn, name, rate_limit)
            return app.id, storage.add_write_key(conn, app.id)

    def create_destination(self, app_id: int, name: str, kind: str,
                           settings: dict[str, Any], **fields: Any) -> storage.Destination:
        with self.connect() as conn:
            return storage.create_destination(conn, app_id, name, kind, settings, **fields)

    # -- HTTP -----------------------------------------------------------------------

    def post(self, path: str, body: Any, key: str | None, **kwargs: Any) -> requests.Response:
        auth = (key, "") if key is not None else None
        return requests.post(self.api_url + path, json=body, auth=auth, timeout=30, **kwargs)

    # -- Kafka ----------------------------------------------------------------------

    def read_topic(self, topic: str, expect: int | None = None, timeout: float = 30,
                   committed_only: bool = True) -> list[Any]:
        """Every message in ``topic`` (read_committed), waiting for ``expect`` of them."""
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed" if committed_only else "read_uncommitted",
        })
        deadline = time.monotonic() + timeout
        try:
            while True:  # the topic may not have been created yet
                metadata = consumer.list_topics(topic, timeout=10).topics[topic]
                if metadata.error is None and metadata.partitions:
                    break
                if time.monotonic() > deadline:
                    return []
                time.sleep(0.2)
            partitions = [TopicPartition(topic, p, 0) for p in metadata.partitions]
            consumer.assign(partitions)
            messages: list[Any] = []
            quiet_since = time.monotonic()
            while time.monotonic() < deadline:
                batch = consumer.consume(1000, 0.5)
                batch = [m for m in batch if m.error() is None]
                messages.extend(batch)
                if batch:
                    quiet_since = time.monotonic()
                if expect is not None and len(messages) >= expect:
                    # Keep reading briefly: more than expected would be a duplicate.
                    if time.monotonic() - quiet_since > 1.0:
                        break
                elif expect is None and time.monotonic() - quiet_since > 2.0:
                    break
            return messages
        finally:
            consumer.close()
