"""Helpers of Pilot's tests (see conftest.py for the fixtures and how Commander is run):
importable by name as `pilot_testing`, since conftest modules are not."""

from __future__ import annotations

import re
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.test import TestResponse

from commander.agent import Commander
from commander.api import create_app as create_commander
from commander.settings import Settings as CommanderSettings
from heliostat.config import load_config
from heliostat.ledger import Ledger
from heliostat.ledger_store import FileLedgerStore
from heliostat.model import build_model
from heliostat.render import render_manifests
from pilot.passwords import ScryptCost
from pilot.settings import LoginLimits, Settings

PLATFORM = "pilotbed"
COMMANDER_TOKEN = "commander-token-for-pilot-tests"
ADMIN_PASSWORD = "first-admin-password-0123"
SECRET_KEY = "secret-key-for-pilot-tests-0123456789"
# Cheap enough for tests that sign in often; production uses passwords.DEFAULT_COST.
FAST_COST = ScryptCost(log2_n=10, r=8, p=1)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

STATUS = {
    "platform": PLATFORM,
    "revision": {"number": 2, "description": "upgrade", "deployed_at": "2026-01-02T03:04:05Z"},
    "pending": None,
    "modules": ["core", "commander"],
    "services": [
        {"service": "gateway", "module": "core", "ready": 1, "desired": 1, "health": "healthy",
         "image": "heliostat/gateway:0.1.0", "image_id": "sha256:" + "1" * 64,
         "image_digest": None, "revisions": [2], "age_seconds": 3725},
        {"service": "registry", "module": "core", "ready": 0, "desired": 1,
         "health": "unhealthy", "image": "heliostat/registry:0.1.0", "image_id": None,
         "image_digest": "sha256:" + "2" * 64, "revisions": [1, 2], "age_seconds": 42},
        {"service": "commander", "module": "commander", "ready": 1, "desired": 1,
         "health": "healthy", "image": "heliostat/commander:0.1.0", "image_id": None,
         "image_digest": None, "revisions": [2], "age_seconds": 90061},
    ],
    "operations": [],
}


@dataclass
class StatusStandIn:
    """What the stand-in answers for GET /api/v1/status, and who asked."""

    body: Any = field(default_factory=lambda: dict(STATUS))
    status: int = 200
    authorizations: list[str] = field(default_factory=list)


@dataclass
class CommanderUnderTest:
    url: str
    commander: Commander
    ledger: Ledger
    status: StatusStandIn

    def finish(self, operation: str, state: str = "deployed", revision: int | None = None,
               lines: tuple[str, ...] = ()) -> None:
        """Play Commander's worker: progress lines, then the operation's outcome."""
        store = self.commander.store
        store.update(operation, state="running")
        for line in lines:
            store.add_event(operation, line)
        store.update(operation, state=state, revision=revision)


def platform_yaml(directory: Path, commander: str = "auto_update: true") -> Path:
    (directory / "pg-password").write_text("x\n")
    path = directory / "platform.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {PLATFORM}
        target: {{compose: {{state_dir: {directory / "state"}}}}}
        modules:
          clickstream: {{enabled: false}}
          pilot: {{enabled: false}}
          monitoring: {{enabled: false}}
          commander: {{{commander}}}
        stores:
          postgres: {{mode: external, host: pg.invalid, database: x, user: x,
                     password_file: {directory / "pg-password"}}}
          redis: {{mode: external, host: redis.invalid}}
          kafka: {{mode: external, bootstrap: ["kafka.invalid:9092"]}}
        """))
    return path


def record(ledger: Ledger, directory: Path, description: str, status: str,
           commander: str = "auto_update: true") -> int:
    config = load_config(platform_yaml(directory, commander))
    manifests = {m.filename: m.text() for m in render_manifests(build_model(config))}
    revision = ledger.record_revision(
        origin="cli", description=description, bundle_version="0.1.0", bundle_digest="",
        config=config.values, secrets={"commander-token": COMMANDER_TOKEN},
        manifests=manifests, images={})
    ledger.mark(revision.number, status)  # type: ignore[arg-type]
    return revision.number


def serve(app: Any) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="wsgi", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def run_commander(tmp_path: Path) -> Iterator[CommanderUnderTest]:
    """Revisions 1 (install, superseded), 2 (upgrade, deployed), 3 (failed, never
    deployed) in a real ledger, and Commander's API over it."""
    state_dir = tmp_path / "state" / PLATFORM
    ledger = Ledger(FileLedgerStore(state_dir))
    record(ledger, tmp_path, "install", "deployed")
    record(ledger, tmp_path, "upgrade", "deployed", "auto_update: false")
    record(ledger, tmp_path, "broken upgrade", "failed", "auto_update: true")
    real = create_commander(CommanderSettings(platform=PLATFORM, state_dir=state_dir,
                                              token=COMMANDER_TOKEN,
                                              webhook_secret="webhook-secret-0123"),
                            start_worker=False)
    stand_in = StatusStandIn()
    status_app = Flask("commander-status-stand-in")

    @status_app.get("/api/v1/status")
    def status() -> Any:
        from flask import jsonify, request

        stand_in.authorizations.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {COMMANDER_TOKEN}":
            return jsonify({"error": "missing or wrong bearer token", "status": 401}), 401
        return jsonify(stand_in.body), stand_in.status

    def dispatch(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = status_app if environ.get("PATH_INFO") == "/api/v1/status" else real
        return target(environ, start_response)

    server, url = serve(dispatch)
    yield CommanderUnderTest(url, real.extensions["commander"], ledger, stand_in)
    server.shutdown()


def pilot_settings(dsn: str, commander_url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "postgres_dsn": dsn, "secret_key": SECRET_KEY, "commander_url": commander_url,
        "commander_token": COMMANDER_TOKEN, "admin_password": ADMIN_PASSWORD,
        "password_cost": FAST_COST, "startup_timeout": 30.0, "commander_timeout": 5.0,
        "login_limits": LoginLimits(per_account=5, per_address=20, window_seconds=900)}
    values.update(changes)
    return Settings(**values)


def csrf_of(page: TestResponse) -> str:
    found = CSRF.search(page.get_data(as_text=True))
    assert found, page.get_data(as_text=True)[:500]
    return found[1]


def sign_in(client: FlaskClient, username: str = "admin", password: str = ADMIN_PASSWORD,
            next_path: str = "/", **environ: Any) -> TestResponse:
    """A fresh login from `client` (any session cookie it had is dropped first)."""
    client.delete_cookie("pilot_session")
    form = client.get("/login", **environ)
    return client.post("/login", data={"username": username, "password": password,
                                       "next": next_path, "csrf_token": csrf_of(form)},
                       **environ)


def page_csrf(client: FlaskClient, path: str = "/account") -> str:
    """The CSRF token of the signed-in client's session, from one of its pages."""
    return csrf_of(client.get(path))


def add_user(client: FlaskClient, username: str, role: str = "viewer",
             password: str = "viewer-password-0123") -> None:
    answer = client.post("/users", data={"username": username, "role": role,
                                         "password": password,
                                         "csrf_token": page_csrf(client, "/users")})
    assert answer.status_code == 303, answer.get_data(as_text=True)
