"""An installed platform as Commander sees it, without Docker: a real ledger
(FileLedgerStore in tmp_path) holding a deployed revision rendered from a real
platform.yaml, and Commander's app over it with its worker not started."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from commander_testing import NAME, TOKEN, WEBHOOK_SECRET, platform_yaml, record_deployed
from flask.testing import FlaskClient

from commander.api import Commander, create_app
from commander.settings import Settings
from heliostat.config import load_config
from heliostat.ledger import Ledger
from heliostat.ledger_store import FileLedgerStore


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / NAME


@pytest.fixture
def ledger(state_dir: Path) -> Ledger:
    return Ledger(FileLedgerStore(state_dir))


@pytest.fixture
def install(tmp_path: Path, ledger: Ledger) -> Callable[..., int]:
    def installed(commander: str = "", description: str = "install") -> int:
        return record_deployed(ledger, load_config(platform_yaml(tmp_path, commander)),
                               description)

    return installed


@pytest.fixture
def settings(state_dir: Path) -> Settings:
    return Settings(platform=NAME, state_dir=state_dir, token=TOKEN,
                    webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
def app(settings: Settings) -> Any:
    return create_app(settings, start_worker=False)


@pytest.fixture
def commander(app: Any) -> Commander:
    return app.extensions["commander"]


@pytest.fixture
def client(app: Any) -> FlaskClient:
    return app.test_client()
