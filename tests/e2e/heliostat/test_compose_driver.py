"""The Compose driver and the apply loop on the real engine, with a hand-written Compose
file: a stateful store, a job its dependants wait for, and a stateless service that is
swapped (new container healthy first, then the old one goes)."""

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.models.containers import Container

from heliostat.apply import Applier, Change
from heliostat.drivers.compose import ComposeDriver
from heliostat.drivers.compose_secrets import ensure_secrets
from heliostat.ledger import Ledger


class Killed(BaseException):
    """Stands for SIGKILL at one point of an apply: nothing after it runs."""


def compose_file(platform: str, state: Path, *, web_command: str = "serve",
                 greeting: str = "hello") -> dict[str, str]:
    web = {"serve": '[python3, -m, http.server, "8000", -d, /etc/web]',
           "hang": '[sleep, "1000"]'}[web_command]
    probe = ("[CMD, python3, -c, \"import socket; socket.create_connection(('127.0.0.1', "
             "{port}), timeout=2)\"]")
    text = textwrap.dedent(f"""\
        name: {platform}
        services:
          db-0:
            image: heliostat/base:0.1.0
            command: [python3, -m, http.server, "9000", -d, /data]
            hostname: db-0
            environment: {{REPLICA_INDEX: "0"}}
            labels: {{io.heliostat.platform: {platform}, io.heliostat.service: db,
                     io.heliostat.kind: stateful}}
            networks: {{platform: {{aliases: [db]}}}}
            volumes: [{{type: volume, source: db-0-data, target: /data}}]
            healthcheck: {{test: {probe.format(port=9000)}, interval: 1s, timeout: 2s,
                          retries: 2, start_period: 3s}}
            restart: unless-stopped
          migrate:
            image: heliostat/base:0.1.0
            command: [sh, -c, "sleep 1; date +%s.%N > /data/migrated"]
            environment: {{}}
            labels: {{io.heliostat.platform: {platform}, io.heliostat.service: migrate,
                     io.heliostat.kind: job}}
            networks: {{platform: {{aliases: [migrate]}}}}
            volumes: [{{type: volume, source: db-0-data, target: /data}}]
            depends_on: {{db-0: {{condition: service_healthy}}}}
            restart: "no"
          web:
            image: heliostat/gateway:0.1.0
            command: {web}
            environment: {{GREETING: {greeting}}}
            labels: {{io.heliostat.platform: {platform}, io.heliostat.service: web,
                     io.heliostat.kind: stateless}}
            networks: {{platform: {{aliases: [web]}}}}
            configs: [{{source: web-index, target: /etc/web/index.html}}]
            secrets: [{{source: token, target: /run/secrets/token}}]
            healthcheck: {{test: {probe.format(port=8000)}, interval: 1s, timeout: 2s,
                          retries: 2, start_period: 3s}}
            depends_on: {{migrate: {{condition: service_completed_successfully}}}}
            restart: unless-stopped
            deploy: {{replicas: 2, update_config: {{order: start-first}}}}
        networks:
          platform: {{name: heliostat-{platform}, labels: {{io.heliostat.platform: {platform}}}}}
        volumes:
          db-0-data: {{labels: {{io.heliostat.platform: {platform}}}}}
        configs:
          web-index: {{content: "costs $$5\\n"}}
        secrets:
          token: {{file: {state}/secrets/token}}
        """)
    return {"compose.yaml": text}


@pytest.fixture
def driver(platform_name: str, tmp_path: Path,
           compose_engine: docker.DockerClient) -> Iterator[ComposeDriver]:
    # A short rotation: no gateway in front of these containers caches their addresses.
    yield ComposeDriver(platform_name, tmp_path / platform_name, compose_engine,
                        rotation_seconds=0.5)


def apply(driver: ComposeDriver, manifests: dict[str, str], description: str = "install"):
    secrets = ensure_secrets({"token": {"generate": "token"}}, driver.state_dir)
    return Applier(driver).run(Change(description, manifests, secrets=secrets), description)


def running(driver: ComposeDriver) -> dict[str, Container]:
    return {c.name.removeprefix(f"{driver.platform}-"): c
            for c in driver.live_containers().values()}


def started_at(container: Container) -> str:
    container.reload()
    return container.attrs["State"]["StartedAt"]


def test_waves_wait_for_health_and_jobs_for_completion(driver: ComposeDriver):
    outcome = apply(driver, compose_file(driver.platform, driver.state_dir))
    assert outcome.status == "deployed", outcome.failure
    containers = running(driver)
    assert set(containers) == {"db-0", "migrate", "web-1", "web-2"}
    job = containers["migrate"]
    job.reload()
    assert job.attrs["State"]["ExitCode"] == 0
    finished = job.attrs["State"]["FinishedAt"]
    assert started_at(containers["db-0"]) < job.attrs["State"]["StartedAt"]
    assert all(finished < started_at(containers[k]) for k in ("web-1", "web-2"))
    web = containers["web-1"]
    # the config as rendered (Compose's `$$` is one `$`), the secret readable by www-data
    assert web.exec_run(["cat", "/etc/web/index.html"]).output == b"costs $5\n"
    token = (driver.state_dir / "secrets" / "token").read_text()
    assert web.exec_run(["cat", "/run/secrets/token"], user="www-data").output.decode() == token
    assert web.exec_run(["sh", "-c", "echo x > /run/secrets/token"]).exit_code != 0  # read-only
    assert driver.observe()["migrate"].health == "healthy"


def test_a_stateless_update_swaps_containers_and_a_failed_swap_keeps_the_old(
        driver: ComposeDriver):
    assert apply(driver, compose_file(driver.platform, driver.state_dir)).status == "deployed"
    before = {k: c.id for k, c in running(driver).items()}
    outcome = apply(driver, compose_file(driver.platform, driver.state_dir, greeting="hi"),
                    "upgrade")
    assert outcome.status == "deployed", outcome.failure
    after = {k: c.id for k, c in running(driver).items()}
    assert set(after) == {"db-0", "migrate", "web-1", "web-2"}  # no `-next` left
    assert after["db-0"] == before["db-0"] and after["migrate"] == before["migrate"]
    assert after["web-1"] != before["web-1"] and after["web-2"] != before["web-2"]

    failed = apply(driver, compose_file(driver.platform, driver.state_dir, web_command="hang",
                                        greeting="hi"), "upgrade")
    assert failed.status == "rolled-back"
    assert failed.failure.key == "web-1" and "health check keeps failing" in failed.failure.reason
    assert {k: c.id for k, c in running(driver).items()} == after  # the old ones kept serving
    assert [r.status for r in Ledger(driver.ledger_store()).revisions()] == [
        "superseded", "deployed", "rolled-back"]


def test_a_swap_cut_off_before_its_gate_is_finished_by_the_next_apply(
        driver: ComposeDriver, monkeypatch: pytest.MonkeyPatch):
    assert apply(driver, compose_file(driver.platform, driver.state_dir)).status == "deployed"
    upgraded = compose_file(driver.platform, driver.state_dir, greeting="hi")

    def killed(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(driver, "wait", killed)
        with pytest.raises(Killed):
            apply(driver, upgraded, "upgrade")
    assert {"web-1", "web-1-next"} <= set(running(driver))  # both, mid-swap
    outcome = apply(driver, upgraded, "upgrade")
    assert outcome.resumed.status == "deployed" and outcome.status == "unchanged"
    containers = running(driver)
    assert set(containers) == {"db-0", "migrate", "web-1", "web-2"}
    assert containers["web-1"].labels["io.heliostat.revision"] == "2"


def test_a_container_created_but_never_started_is_started_on_resume(
        driver: ComposeDriver, monkeypatch: pytest.MonkeyPatch):
    def killed(self, *args, **kwargs):
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(Container, "start", killed)
        with pytest.raises(Killed):
            apply(driver, compose_file(driver.platform, driver.state_dir))
    assert running(driver)["db-0"].status == "created"
    started = time.monotonic()
    outcome = apply(driver, compose_file(driver.platform, driver.state_dir))
    assert outcome.resumed.status == "deployed", outcome
    assert time.monotonic() - started < 60
    assert all(c.status in ("running", "exited") for c in running(driver).values())
