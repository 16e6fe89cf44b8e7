"""A Redis server of the session's own on a free loopback port, without persistence."""

from __future__ import annotations

import itertools
import shutil

import redis

from tests.infra.processes import LoopbackServer, ManagedProcess, free_port
from tests.infra.run_dir import RunDir
from tests.infra.settings import NotProvisioned

DATABASES = 16


class RedisServer(LoopbackServer):
    def __init__(self, run: RunDir) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise NotProvisioned("redis-server is not installed; run `make testbed`")
        self.port = free_port()
        self._process = ManagedProcess(
            "redis",
            [
                binary, "--bind", "127.0.0.1", "--port", str(self.port),
                "--save", "", "--appendonly", "no", "--databases", str(DATABASES),
                "--dir", str(run.subdir("redis")),
            ],
            run,
        )  # fmt: skip
        # Database 0 is left to tests that use `.url`; the others rotate between tests.
        self._next_database = itertools.cycle(range(1, DATABASES))

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def _readiness(self) -> str:
        return f"PING on 127.0.0.1:{self.port}"

    def flushed_database_url(self) -> str:
        """URL of a logical database emptied for the caller."""
        number = next(self._next_database)
        url = f"redis://127.0.0.1:{self.port}/{number}"
        with redis.Redis.from_url(url) as client:
            client.flushdb()
        return url

    def _answers(self) -> bool:
        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False
