"""Fixtures for the clickstream integration tests, on the test bed's real Kafka,
Postgres and Redis (``kafka``, ``pg_database``, ``redis_url``, ``kafka_topic_prefix``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clickstream.migrate import migrate
from tests.integration.clickstream.pipeline import Pipeline


@pytest.fixture
def pipeline(pg_database: str, kafka, redis_url: str, kafka_topic_prefix: str,
             tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    migrate(pg_database)
    prefix = kafka_topic_prefix.rstrip(".")
    running = Pipeline(pg_database, kafka.bootstrap, redis_url, prefix, tmp_path)
    yield running
    running.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for process in running.processes:
            print(f"--- {process.name} ---\n{process.log_tail(60)}")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


