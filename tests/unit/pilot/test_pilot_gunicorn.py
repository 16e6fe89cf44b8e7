"""Pilot as the platform runs it: `gunicorn -c python:pilot.gunicorn_conf
"pilot.app:create_app()"` with module.yaml's environment (secrets as files), two
replicas starting at once on one real Postgres, reached over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import requests
from pilot_testing import ADMIN_PASSWORD, COMMANDER_TOKEN, CSRF, SECRET_KEY
from psycopg.conninfo import conninfo_to_dict

REPOSITORY = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(tmp_path: Path, dsn: str, commander_url: str, port: int) -> dict[str, str]:
    params = conninfo_to_dict(dsn)
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    for name, value in (("pilot-secret-key", SECRET_KEY), ("pilot-admin-password",
                        ADMIN_PASSWORD), ("commander-token", COMMANDER_TOKEN),
                        ("postgres-pilot", str(params["password"]))):
        (secrets / name).write_text(value + "\n")
    return {
        "PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(
            str(REPOSITORY / d) for d in ("webui", "services")),  # as in the image
        "PILOT_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}"),
        "PILOT_SESSION_HOURS": "12",
        "PILOT_SECRET_KEY_FILE": str(secrets / "pilot-secret-key"),
        "PILOT_ADMIN_PASSWORD_FILE": str(secrets / "pilot-admin-password"),
        "COMMANDER_URL": commander_url,
        "COMMANDER_TOKEN_FILE": str(secrets / "commander-token"),
        "PROMETHEUS_URL": "",
        "POSTGRES_HOST": str(params["host"]), "POSTGRES_PORT": str(params["port"]),
        "POSTGRES_DB": str(params["dbname"]), "POSTGRES_USER": str(params["user"]),
        "POSTGRES_SSLMODE": "disable",
        "POSTGRES_PASSWORD_FILE": str(secrets / "postgres-pilot"),
        "REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_PASSWORD_FILE": "",
    }


def wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not become healthy")


def test_two_replicas_under_gunicorn(tmp_path, pg_database, commander):
    ports = [free_port(), free_port()]
    processes = [subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:pilot.gunicorn_conf",
         "pilot.app:create_app()"],
        env=environment(tmp_path, pg_database, commander.url, port), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for port in ports]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(url, process)
        with psycopg.connect(pg_database) as conn:
            assert conn.execute("SELECT username FROM pilot.users").fetchall() == [("admin",)]

        # Sign in on one replica; the session works on the other (it is in Postgres).
        browser = requests.Session()
        form = browser.get(f"{urls[0]}/login", timeout=10)
        token = CSRF.search(form.text)[1]
        answer = browser.post(f"{urls[0]}/login", allow_redirects=False, timeout=30, data={
            "username": "admin", "password": ADMIN_PASSWORD, "csrf_token": token})
        assert answer.status_code == 303, answer.text
        cookie = browser.cookies.get("pilot_session")
        other = requests.get(f"{urls[1]}/api/v1/me", cookies={"pilot_session": cookie},
                             timeout=10)
        assert other.json()["username"] == "admin"
        assert requests.get(f"{urls[1]}/releases", cookies={"pilot_session": cookie},
                            timeout=10).status_code == 200

        # /metrics adds up both workers of a replica.
        for _ in range(6):
            requests.get(f"{urls[0]}/health", timeout=5)
        metrics = requests.get(f"{urls[0]}/metrics", timeout=5).text
        line = next(x for x in metrics.splitlines()
                    if x.startswith('pilot_http_requests_total{method="GET",route="/health"'))
        assert float(line.rsplit(" ", 1)[1]) >= 7
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=30)[0] for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    # Every line on stdout is a JSON object: gunicorn's own and the app's.
    logs = [[json.loads(line) for line in output.splitlines() if line.strip()]
            for output in outputs]
    assert all(any("Booting worker" in line["msg"] for line in lines) for lines in logs)
    assert {"msg": "request", "path": "/api/v1/me", "status": 200, "user": "admin"}.items() <= (
        next(line for line in logs[1] if line.get("path") == "/api/v1/me").items())
    created = [line for output in outputs for line in output.splitlines()
               if "account admin created" in line]
    assert len(created) == 1, outputs
