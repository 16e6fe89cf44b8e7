"""A Postgres cluster of the session's own: a copy of the provisioned template, its postmaster
on a free loopback port. Its own cluster means stop/start faults and leftovers of other runs
cannot touch anybody else's database."""

from __future__ import annotations

import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.infra.processes import LoopbackServer, ManagedProcess, free_port
from tests.infra.run_dir import RunDir
from tests.infra.settings import pinned, postgres_bin, postgres_template, require


class PostgresServer(LoopbackServer):
    # Fast shutdown: sessions are disconnected, the cluster shuts down cleanly.
    stop_signal = signal.SIGINT

    def __init__(self, run: RunDir) -> None:
        template = require(postgres_template(), "the Postgres template cluster")
        binary = require(postgres_bin() / "postgres", "Postgres")
        self.port = free_port()
        self.password = pinned()["POSTGRES_PASSWORD"]
        home = run.subdir("postgres")
        self.data_dir = home / "data"
        socket_dir = home / "socket"
        socket_dir.mkdir()
        subprocess.run(["cp", "-a", str(template), str(self.data_dir)], check=True)
        shutil.chown(socket_dir, "postgres", "postgres")
        shutil.chown(home, "postgres", "postgres")
        self._process = ManagedProcess(
            "postgres",
            [
                str(binary), "-D", str(self.data_dir),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"port={self.port}",
                "-c", f"unix_socket_directories={socket_dir}",
                "-c", "max_connections=200",
                # Test data only: durability across an OS crash is not worth the fsyncs.
                "-c", "fsync=off",
                "-c", "full_page_writes=off",
            ],
            run,
            user="postgres",
        )  # fmt: skip

    @property
    def dsn(self) -> str:
        """Superuser DSN on 127.0.0.1."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def _readiness(self) -> str:
        return f"connections on 127.0.0.1:{self.port}"

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new, empty database for one test; dropped afterwards (connections and all)."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield self.dsn_for(name)
        finally:
            if self._process.running:
                with psycopg.connect(self.dsn, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
