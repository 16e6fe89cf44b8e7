"""Pilot's app (Flask test client) on the test bed's real Postgres — a fresh database per
test (`pg_database`) — talking over real HTTP to Commander.

Commander is the real one (services/commander's app over a real ledger in tmp_path,
served on a loopback port, its worker not started: a test plays the worker by moving
an operation's state in Commander's store). Only `GET /api/v1/status` is answered by a
small stand-in HTTP app on the same port, because Commander computes it from the Docker
engine, which these tests do not run; its answer has the shape of Commander's Status
schema (services/commander/openapi.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pilot_testing import CommanderUnderTest, pilot_settings, run_commander, sign_in

from pilot.app import create_app
from pilot.settings import Settings


@pytest.fixture
def commander(tmp_path: Path) -> Iterator[CommanderUnderTest]:
    """Revisions 1 (install, superseded), 2 (upgrade, deployed), 3 (failed, never
    deployed) in a real ledger, and Commander's API over it."""
    yield from run_commander(tmp_path)


@pytest.fixture
def settings(pg_database: str, commander: CommanderUnderTest) -> Settings:
    return pilot_settings(pg_database, commander.url)


@pytest.fixture
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def admin(client: FlaskClient) -> FlaskClient:
    """The test client, signed in as `admin`."""
    answer = sign_in(client)
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return client
