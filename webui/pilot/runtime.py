"""What every request of one Pilot process shares: settings, the database, Commander's
client, the clickstream module's stores, the monitoring and Airflow modules' APIs, the
login limiter and the signers."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from pilot.airflow_status import Airflow
from pilot.alertmanager_api import AlertmanagerAPI
from pilot.clickstream_apps import Clickstream
from pilot.clickstream_destinations import Destinations
from pilot.commander_client import CommanderClient
from pilot.csrf import Csrf
from pilot.database import Database
from pilot.live_events import LiveEvents
from pilot.login_limits import LoginLimiter
from pilot.prometheus_api import PrometheusAPI
from pilot.sessions import SessionCodec
from pilot.settings import Settings


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    database: Database
    commander: CommanderClient
    clickstream: Clickstream
    destinations: Destinations
    live_events: LiveEvents
    prometheus: PrometheusAPI
    alertmanager: AlertmanagerAPI
    airflow: Airflow
    limiter: LoginLimiter
    sessions: SessionCodec
    csrf: Csrf

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        database = Database(settings.postgres_dsn)
        clickstream = Clickstream(settings.clickstream_dsn)
        return cls(settings=settings, database=database,
                   commander=CommanderClient(settings.commander_url, settings.commander_token,
                                             settings.commander_timeout),
                   clickstream=clickstream,
                   destinations=Destinations(clickstream, settings.kafka_bootstrap,
                                             settings.clickstream_prefix,
                                             settings.clickstream_partitions),
                   live_events=LiveEvents(settings.redis_url, settings.clickstream_prefix,
                                          settings.event_stream_seconds,
                                          settings.event_streams),
                   prometheus=PrometheusAPI(settings.prometheus_url),
                   alertmanager=AlertmanagerAPI(settings.alertmanager_url),
                   airflow=Airflow(settings.airflow_api_url, settings.flower_url,
                                   settings.airflow_link),
                   limiter=LoginLimiter(database, settings.login_limits),
                   sessions=SessionCodec(settings.secret_key, settings.session_hours * 3600),
                   csrf=Csrf(settings.secret_key))


def runtime() -> Runtime:
    return current_app.extensions["pilot"]
