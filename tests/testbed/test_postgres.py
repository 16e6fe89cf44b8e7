"""Postgres round trips: SQL, LISTEN/NOTIFY, and a stop/start that keeps the data."""

from __future__ import annotations

import psycopg
import pytest

from tests.infra.postgres import PostgresServer


def test_sql_round_trip_in_a_fresh_database(pg_database: str) -> None:
    with psycopg.connect(pg_database) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE events (id serial PRIMARY KEY, body jsonb NOT NULL)")
        conn.execute("INSERT INTO events (body) VALUES (%s), (%s)", ['{"n": 1}', '{"n": 2}'])
        rows = conn.execute("SELECT body->>'n' FROM events ORDER BY id").fetchall()
    assert rows == [("1",), ("2",)]


def test_listen_notify(pg_database: str) -> None:
    with (
        psycopg.connect(pg_database, autocommit=True) as listener,
        psycopg.connect(pg_database, autocommit=True) as sender,
    ):
        listener.execute("LISTEN destinations_changed")
        sender.execute("SELECT pg_notify('destinations_changed', 'app-42')")
        received = [(n.channel, n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
    assert received == [("destinations_changed", "app-42")]


def test_stop_and_start_keep_the_data(postgres: PostgresServer, pg_database: str) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('before stop')")

    postgres.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg_database, connect_timeout=2)

    postgres.start()
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("before stop",)]


def test_kill_and_start_recover_committed_data(postgres: PostgresServer, pg_database: str) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('committed')")

    postgres.kill()
    assert not postgres.running
    postgres.start()  # crash recovery replays the WAL
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("committed",)]
