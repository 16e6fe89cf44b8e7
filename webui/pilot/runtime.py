"""What every request of one Pilot process shares: settings, the database, Commander's
client, the login limiter and the signers."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from pilot.clickstream_apps import Clickstream
from pilot.commander_client import CommanderClient
from pilot.csrf import Csrf
from pilot.database import Database
from pilot.login_limits import LoginLimiter
from pilot.sessions import SessionCodec
from pilot.settings import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    database: Database
    commander: CommanderClient
    clickstream: Clickstream
    limiter: LoginLimiter
    sessions: SessionCodec
    csrf: Csrf

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        database = Database(settings.postgres_dsn)
        return cls(settings=settings, database=database,
                   commander=CommanderClient(settings.commander_url, settings.commander_token,
                                             settings.commander_timeout),
                   clickstream=Clickstream(settings.clickstream_dsn),
                   limiter=LoginLimiter(database, settings.login_limits),
                   sessions=SessionCodec(settings.secret_key, settings.session_hours * 3600),
                   csrf=Csrf(settings.secret_key))


def runtime() -> Runtime:
    return current_app.extensions["pilot"]
