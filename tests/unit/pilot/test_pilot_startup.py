"""Start-up on a real Postgres: the schema migration and the first account, idempotent
and safe when replicas start at once; and the password hashes it stores."""

from __future__ import annotations

import threading

import psycopg
import pytest
from pilot_testing import ADMIN_PASSWORD, FAST_COST, pilot_settings, sign_in

from pilot import passwords
from pilot.app import create_app
from pilot.database import Database, DatabaseUnavailable
from pilot.migrate import available_migrations, prepare_database


def rows(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def test_first_start_migrates_and_creates_admin_once(pg_database, commander):
    settings = pilot_settings(pg_database, commander.url)
    create_app(settings)
    versions = [m.version for m in available_migrations()]
    assert [r[0] for r in rows(pg_database, "SELECT version FROM pilot.schema_version"
                                            " ORDER BY version")] == versions
    ((username, role, stored),) = rows(pg_database,
                                       "SELECT username, role, password_hash FROM pilot.users")
    assert (username, role) == ("admin", "admin")
    assert stored.startswith("scrypt$ln=10,r=8,p=1$") and ADMIN_PASSWORD not in stored
    assert passwords.verify_password(ADMIN_PASSWORD, stored)
    # A restart (or a changed secret file) never touches the existing account.
    create_app(pilot_settings(pg_database, commander.url, admin_password="another-one-123"))
    assert rows(pg_database, "SELECT password_hash FROM pilot.users") == [(stored,)]
    client = create_app(settings).test_client()
    assert sign_in(client).status_code == 303


def test_replicas_starting_at_once_take_turns(pg_database, commander):
    settings = pilot_settings(pg_database, commander.url)
    barrier = threading.Barrier(6)
    failures: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait()
            create_app(settings)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert rows(pg_database, "SELECT count(*) FROM pilot.users") == [(1,)]
    assert rows(pg_database, "SELECT count(*) FROM pilot.schema_version") == [
        (len(available_migrations()),)]


def test_without_an_admin_password_no_account_is_made(pg_database, commander):
    create_app(pilot_settings(pg_database, commander.url, admin_password=None))
    assert rows(pg_database, "SELECT count(*) FROM pilot.users") == [(0,)]


def test_no_database_at_start_is_a_clear_error(commander):
    dsn = "postgresql://nobody:x@127.0.0.1:1/none"
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1"):
        create_app(pilot_settings(dsn, commander.url, startup_timeout=0.0))
    with pytest.raises(DatabaseUnavailable):
        prepare_database(Database(dsn), None)


def test_password_hashes_are_salted_scrypt_with_their_parameters():
    one = passwords.hash_password("correct horse", FAST_COST)
    two = passwords.hash_password("correct horse", FAST_COST)
    assert one != two  # a salt per hash
    assert passwords.verify_password("correct horse", one)
    assert not passwords.verify_password("correct horsE", one)
    assert not passwords.needs_rehash(one, FAST_COST)
    assert passwords.needs_rehash(one)  # the default cost is higher
    default = passwords.hash_password("x")
    assert default.startswith("scrypt$ln=15,r=8,p=3$")
    assert passwords.verify_password("x", default)
    for garbage in ("", "plain", "scrypt$ln=99,r=8,p=1$AAAA$AAAA", one[:-10],
                    "scrypt$ln=10,r=8,p=1$!!$!!", "pbkdf2$x$y$z"):
        assert not passwords.verify_password("x", garbage), garbage
        assert passwords.needs_rehash(garbage)


def test_a_weaker_hash_is_upgraded_at_the_next_login(pg_database, commander):
    weak = passwords.ScryptCost(log2_n=8, r=8, p=1)
    create_app(pilot_settings(pg_database, commander.url, password_cost=weak))
    ((before,),) = rows(pg_database, "SELECT password_hash FROM pilot.users")
    assert before.startswith("scrypt$ln=8,")
    client = create_app(pilot_settings(pg_database, commander.url)).test_client()
    assert sign_in(client).status_code == 303
    ((after,),) = rows(pg_database, "SELECT password_hash FROM pilot.users")
    assert after.startswith("scrypt$ln=10,") and passwords.verify_password(ADMIN_PASSWORD,
                                                                           after)
