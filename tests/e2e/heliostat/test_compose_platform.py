"""The real platform on the real engine: the embedded default platform.yaml, renamed and
on a free port, installed once for this module's tests, reached through its gateway —
an event sent with a write key from the clickstream admin CLI arrives at a webhook,
Pilot answers at the gateway's root —, re-applied without touching anything, and purged.
This is the platform `make demo` installs."""

import base64
import json
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import docker
import pytest

from tests.infra.compose_platforms import (
    PLATFORM_LABEL,
    PlatformUnderTest,
    remove_platform,
    unique_platform_name,
)
from tests.infra.http_sink import HttpSink


@pytest.fixture(scope="module")
def default_platform(compose_engine: docker.DockerClient,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformUnderTest]:
    """The default platform, installed once; the tests below share it, read-only unless
    they say otherwise."""
    name = unique_platform_name()
    platform = PlatformUnderTest(name, tmp_path_factory.mktemp("default-platform"))
    platform.config.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {platform.name}
        profile: compose
        gateway: {{http_port: {platform.port}}}
        """))
    started = time.monotonic()
    installed = platform.run("install", timeout=900)
    assert installed.returncode == 0, installed.stderr
    print(f"setup: default platform installed in {time.monotonic() - started:.0f}s")
    platform.install_output = installed.stderr  # type: ignore[attr-defined]
    platform.install_answer = installed.stdout  # type: ignore[attr-defined]
    yield platform
    remove_platform(compose_engine, name)


def post(platform: PlatformUnderTest, path: str, body: dict, write_key: str) -> int:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    request = urllib.request.Request(f"http://127.0.0.1:{platform.port}{path}",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def clickstream_admin(client: docker.DockerClient, platform: PlatformUnderTest,
                      *args: str) -> dict:
    """`python -m clickstream admin …` inside an Event API container, as an operator
    would run it."""
    container = client.containers.get(f"{platform.name}-event-api-1")
    result = container.exec_run(["python3", "-m", "clickstream", "admin", *args,
                                 "--output", "json"])
    assert result.exit_code == 0, result.output.decode()
    return json.loads(result.output.decode().strip().splitlines()[-1])


def test_every_service_is_healthy(default_platform: PlatformUnderTest,
                                  compose_engine: docker.DockerClient):
    platform = default_platform
    assert "wave 2/3: clickstream-migrate" in platform.install_output  # type: ignore[attr-defined]
    rows = json.loads(platform.run("status", "--output", "json").stdout)["services"]
    assert {r["service"] for r in rows} >= {"postgres", "kafka", "redis", "event-api",
                                            "event-router", "webhook-worker", "prometheus",
                                            "gateway", "commander", "pilot"}
    assert all(r["health"] == "healthy" and r["ready"] == r["desired"] for r in rows), rows
    migrate = compose_engine.containers.get(f"{platform.name}-clickstream-migrate")
    assert migrate.attrs["State"]["ExitCode"] == 0
    assert b"migration" in migrate.logs()


def test_an_event_reaches_a_webhook_through_the_gateway(default_platform: PlatformUnderTest,
                                                        compose_engine: docker.DockerClient):
    platform = default_platform
    network = compose_engine.networks.get(f"heliostat-{platform.name}")
    gateway_address = network.attrs["IPAM"]["Config"][0]["Gateway"]
    sink = HttpSink(host=gateway_address)  # reachable from the platform's containers
    try:
        app = clickstream_admin(compose_engine, platform, "app", "create",
                                f"shop-{uuid.uuid4().hex[:8]}")
        clickstream_admin(compose_engine, platform, "destination", "create", str(app["id"]),
                          "--name", "hook", "--kind", "webhook", "--setting",
                          f"url={sink.url}")
        message_id = str(uuid.uuid4())
        event = {"userId": "u-1", "event": "Order Completed", "messageId": message_id,
                 "properties": {"total": 42.5}}
        # The worker picks up a new destination from Postgres's change notifications; an
        # event sent before it did is still delivered, once it has.
        assert post(platform, "/v1/track", event, app["write_key"]) == 200
        sink.wait_until(lambda: any(e.get("messageId") == message_id for e in sink.events()),
                        timeout=60)
        delivered = next(e for e in sink.events() if e["messageId"] == message_id)
        assert delivered["event"] == "Order Completed"
        assert delivered["properties"] == {"total": 42.5}
        assert [e["messageId"] for e in sink.events()].count(message_id) == 1

        assert post(platform, "/v1/track", event, "no-such-key") == 401
        assert post(platform, "/v1/track", {"event": "no user"}, app["write_key"]) == 400
    finally:
        sink.stop()


def test_pilot_answers_at_the_gateway_root(default_platform: PlatformUnderTest):
    platform = default_platform
    answer = platform.install_answer  # type: ignore[attr-defined]
    assert f":{platform.port}/" in answer and "pilot-admin-password" in answer, answer
    with urllib.request.urlopen(f"http://127.0.0.1:{platform.port}/login", timeout=10) as page:
        assert page.status == 200
        assert b'name="password"' in page.read()
    # Signed out, the overview sends the browser to the login page.
    request = urllib.request.Request(f"http://127.0.0.1:{platform.port}/")
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(request, timeout=10)
    assert answer.value.code in (302, 303)
    assert "/login" in answer.value.headers["Location"]


def test_pilot_shows_alerts_and_charts(default_platform: PlatformUnderTest):
    """Pilot, signed in through the gateway, reads the platform's Alertmanager and
    Prometheus; Airflow, not in the default platform, is said to be not enabled."""
    platform = default_platform
    pilot = platform.pilot()
    overview = pilot.get(platform.url("/"), timeout=30).text
    assert "Active alerts" in overview and "Open Airflow" not in overview
    alerts = pilot.get(platform.url("/api/v1/alerts"), timeout=30)
    assert alerts.status_code == 200 and isinstance(alerts.json()["alerts"], list)
    charts = pilot.get(platform.url("/api/v1/charts?window=15m"), timeout=30).json()
    assert charts["problem"] is None, charts["problem"]
    assert [c["id"] for c in charts["charts"]] == [
        "received", "rejected", "delivered", "retried", "dead_lettered", "lag"]
    airflow = pilot.get(platform.url("/api/v1/airflow"), timeout=30)
    assert airflow.status_code == 404 and "modules.airflow.enabled" in airflow.json()["error"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _gateway_answer(platform: PlatformUnderTest, body: bytes) -> tuple[int, dict, dict]:
    """POST /v1/track as a browser tracker sends it (text/plain, from another origin)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{platform.port}/v1/track", data=body, method="POST",
        headers={"Content-Type": "text/plain", "Origin": "https://shop.example"})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_gateway_answers_a_browser_itself_when_the_event_api_cannot(
        default_platform: PlatformUnderTest, compose_engine: docker.DockerClient):
    """The gateway's own answers carry CORS headers and the code and message tracking
    libraries read: a body over its limit, and no Event API replica answering."""
    platform = default_platform
    status, headers, body = _gateway_answer(platform, b"x" * (1024 * 1024 + 1))
    assert status == 413 and body["code"] == "too_large", (status, body)
    assert headers["Access-Control-Allow-Origin"] == "*"

    replicas = compose_engine.containers.list(filters={"label": [
        f"{PLATFORM_LABEL}={platform.name}", "io.heliostat.service=event-api"]})
    assert replicas
    for replica in replicas:
        replica.stop(timeout=10)
    try:
        status, headers, body = _gateway_answer(platform, b"{}")
        assert status == 503 and body["code"] == "unavailable", (status, body)
        assert body["message"] and headers["Retry-After"] == "5"
        assert headers["Access-Control-Allow-Origin"] == "*"
    finally:
        for replica in replicas:
            replica.start()
    deadline = time.monotonic() + 120
    while not all(compose_engine.containers.get(r.id).attrs["State"].get("Health", {})
                  .get("Status") == "healthy" for r in replicas):
        assert time.monotonic() < deadline, "the Event API did not become healthy again"
        time.sleep(0.5)
    # Its own answers are its own again (the gateway does not rewrite them).
    status, headers, body = _gateway_answer(platform, b"{}")
    assert status == 401 and headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_reapplying_touches_nothing(default_platform: PlatformUnderTest,
                                    compose_engine: docker.DockerClient):
    platform = default_platform
    label = {"label": f"{PLATFORM_LABEL}={platform.name}"}
    ids = {c.id for c in compose_engine.containers.list(all=True, filters=label)}
    again = platform.run("upgrade")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    assert ids == {c.id for c in compose_engine.containers.list(all=True, filters=label)}


def test_uninstall_purge_removes_everything(default_platform: PlatformUnderTest,
                                            compose_engine: docker.DockerClient):
    """Last in this module: it takes the shared platform away."""
    platform = default_platform
    purged = platform.run("uninstall", "--purge", "--yes")
    assert purged.returncode == 0, purged.stderr
    label = {"label": f"{PLATFORM_LABEL}={platform.name}"}
    assert compose_engine.containers.list(all=True, filters=label) == []
    assert compose_engine.volumes.list(filters=label) == []
    assert not platform.ledger.exists()
