"""The real platform on the real engine: the embedded default platform.yaml, renamed and
on a free port, installed once for this module's tests, reached through its gateway —
an event sent with a write key from the clickstream admin CLI arrives at a webhook,
Pilot answers at the gateway's root —, re-applied without touching anything, and purged.
This is the platform `make demo` installs."""

import base64
import contextlib
import http.client
import itertools
import json
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.infra.compose_platforms import (
    PLATFORM_LABEL,
    PlatformUnderTest,
    clickstream_admin,
    container_of,
    get_inside,
    remove_platform,
    replica,
    unique_platform_name,
    wait_for,
)
from tests.infra.http_sink import HttpSink

#: Shorter than the default 15 s, so that an alert's timing is tested in little time.
SCRAPE_INTERVAL = 5


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
        modules:
          monitoring: {{prometheus: {{scrape_interval_seconds: {SCRAPE_INTERVAL}}}}}
        """))
    started = time.monotonic()
    platform.installed_at = time.time()  # type: ignore[attr-defined]
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


@contextlib.contextmanager
def event_api_stopped(engine: docker.DockerClient,
                      platform: PlatformUnderTest) -> Iterator[tuple[float, float]]:
    """Every Event API replica stopped, then started again and healthy. Yields when the
    first began to stop and when the last had."""
    replicas = engine.containers.list(filters={"label": [
        f"{PLATFORM_LABEL}={platform.name}", "io.heliostat.service=event-api"]})
    assert len(replicas) == 2
    try:
        began = time.time()
        for container in replicas:
            container.stop(timeout=10)
        yield began, time.time()
    finally:
        for container in replicas:
            container.start()
    wait_for("the Event API healthy again", lambda: all(
        engine.containers.get(c.id).attrs["State"]["Health"]["Status"] == "healthy"
        for c in replicas), 120)


def _gateway_answer(platform: PlatformUnderTest,
                    body: bytes) -> tuple[int, http.client.HTTPMessage, dict]:
    """POST /v1/track as a browser tracker sends it (text/plain, from another origin).
    The headers as the message, whose names are case-insensitive as HTTP's are."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{platform.port}/v1/track", data=body, method="POST",
        headers={"Content-Type": "text/plain", "Origin": "https://shop.example"})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, answer.headers, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_the_gateway_answers_a_browser_itself_when_the_event_api_cannot(
        default_platform: PlatformUnderTest, compose_engine: docker.DockerClient):
    """The gateway's own answers carry CORS headers and the code and message tracking
    libraries read: a body over its limit, and no Event API replica answering."""
    platform = default_platform
    status, headers, body = _gateway_answer(platform, b"x" * (1024 * 1024 + 1))
    assert status == 413 and body["code"] == "too_large", (status, body)
    assert headers["Access-Control-Allow-Origin"] == "*"

    with event_api_stopped(compose_engine, platform):
        status, headers, body = _gateway_answer(platform, b"{}")
        assert status == 503 and body["code"] == "unavailable", (status, body)
        assert body["message"] and headers["Retry-After"] == "5"
        assert headers["Access-Control-Allow-Origin"] == "*"
    # Its own answers are its own again (the gateway does not rewrite them).
    status, headers, body = _gateway_answer(platform, b"{}")
    assert status == 401 and headers["Access-Control-Allow-Origin"] == "https://shop.example"


def query(prometheus: Any, promql: str) -> list[dict]:
    """The instant vector `promql` evaluates to on this Prometheus replica."""
    encoded = urllib.parse.urlencode({"query": promql})
    answer = json.loads(get_inside(prometheus, f"http://127.0.0.1:9090/api/v1/query?{encoded}"))
    return answer["data"]["result"]


def up_samples(prometheus: Any, job: str, since: float) -> list[float]:
    """When this Prometheus replica scraped `job` since `since`: its raw samples' times."""
    window = int(time.time() - since) + 1
    return sorted(float(t) for series in query(prometheus, f'up{{job="{job}"}}[{window}s]')
                  for t, _ in series["values"])


def largest_gap(times: list[float]) -> float:
    return max(b - a for a, b in itertools.pairwise(times))


def service_down_alerts(alertmanager: Any, job: str) -> list[dict]:
    filters = urllib.parse.urlencode({"filter": ['alertname="ServiceDown"', f'job="{job}"']},
                                     doseq=True)
    alerts = json.loads(get_inside(alertmanager,
                                   f"http://127.0.0.1:9093/api/v2/alerts?{filters}"))
    return [a for a in alerts if a["status"]["state"] == "active"]


def test_one_prometheus_down_the_other_has_everything_and_a_service_down_alerts(
        default_platform: PlatformUnderTest, compose_engine: docker.DockerClient):
    """The Prometheus pair: with one replica stopped the other holds every sample since
    install and goes on scraping; the stopped one, started again, keeps its history (its
    own volume) and scrapes again. Meanwhile the Event API is stopped: ServiceDown
    reaches Alertmanager within the rule's `for` and two scrape intervals (plus one
    scrape timeout, since a stopped container's address stops answering)."""
    platform = default_platform
    installed_at = platform.installed_at  # type: ignore[attr-defined]
    first, second = (replica(compose_engine, platform, f"prometheus-{i}") for i in (0, 1))
    alertmanager = container_of(compose_engine, platform, "alertmanager")
    history = up_samples(second, "pilot", installed_at)
    assert history and largest_gap(history) <= 3 * SCRAPE_INTERVAL
    # From a clean start: both Event API replicas scraped, no ServiceDown pending for it.
    wait_for("both Event API replicas scraped, ServiceDown not pending", lambda: query(
        first, 'count(up{job="event-api"} == 1) == 2 unless on() '
               'ALERTS{alertname="ServiceDown", job="event-api"}'), 120, 1)

    with event_api_stopped(compose_engine, platform) as (stopping, stopped):
        second.stop(timeout=10)
        second_down = time.time()
        try:
            # The replica left running: every sample since install, and new ones coming.
            wait_for("scrapes after the other replica stopped",
                     lambda: up_samples(first, "pilot", installed_at)[-1]
                     > second_down + 2 * SCRAPE_INTERVAL, 60)
            samples = up_samples(first, "pilot", installed_at)
            assert samples[0] <= history[0] + SCRAPE_INTERVAL
            assert largest_gap(samples) <= 3 * SCRAPE_INTERVAL, "a gap in the running one"
        finally:
            second.start()
        second_up = time.time()
        wait_for("the restarted replica scraping again",
                 lambda: up_samples(second, "pilot", installed_at)[-1] > second_up, 90)
        restarted = up_samples(second, "pilot", installed_at)
        assert restarted[0] == history[0], "the restarted replica lost its history"
        assert not [t for t in restarted if second_down < t < second_up - SCRAPE_INTERVAL]

        fired = wait_for("ServiceDown of the Event API in Alertmanager",
                         lambda: service_down_alerts(alertmanager, "event-api"), 240, 1)
        # Pending from the first replica gone (fewer than 2 answer), firing at the first
        # evaluation past its `for`, once the target list (refreshed each interval) or a
        # failed scrape showed it.
        fired_at = time.time()
        print(f"measured: ServiceDown in Alertmanager {fired_at - stopping:.0f}s after the "
              f"Event API began to stop, {fired_at - stopped:.0f}s after it had "
              f"(for 120s, scrape interval {SCRAPE_INTERVAL}s)")
        assert fired_at - stopping >= 120, fired_at - stopping
        assert fired_at - stopped <= 120 + 3 * SCRAPE_INTERVAL, fired_at - stopped
        assert fired[0]["annotations"]["summary"] == "event-api: 0 of 2 replicas answer /metrics"


def test_the_stores_and_the_gateway_are_scraped_through_their_exporters(
        default_platform: PlatformUnderTest, compose_engine: docker.DockerClient):
    """Exporters beside Postgres, Redis and the gateway, and the JMX exporter in Kafka,
    scraped as their services, and the volume-usage sidecars beside everything with a
    volume. The Postgres exporter's login reads every module's sessions (pg_monitor), not
    their data."""
    platform = default_platform
    prometheus = replica(compose_engine, platform, "prometheus-0")
    wait_for("every exporter scraped and its store up", lambda: all(
        query(prometheus, f"{metric} == 1") for metric in (
            "pg_up", "redis_up", "nginx_up",
            "sum(kafka_controller_kafkacontroller_activecontrollercount)")), 120, 1)
    assert query(prometheus, "kafka_server_replicamanager_partitioncount > 0")
    # Beside each service with a volume: its volume's fill, that volume alone.
    # (Each job, not each replica: prometheus-1's sidecar stays down once the test above
    # stopped prometheus-1 for a while, see the entrypoint.)
    wait_for("the volume-usage sidecars scraped", lambda: query(
        prometheus, 'count(count by (job) (up{job=~".+-volume-usage"} == 1)) == 5'), 60, 1)
    volumes = {(r["metric"]["job"], r["metric"]["mountpoint"]) for r in query(
        prometheus, "node_filesystem_avail_bytes / node_filesystem_size_bytes < 1")}
    assert volumes == {("postgres-volume-usage", "/var/lib/postgresql/data"),
                       ("redis-volume-usage", "/var/lib/redis"),
                       ("kafka-volume-usage", "/var/lib/kafka"),
                       ("registry-volume-usage", "/var/lib/registry"),
                       ("prometheus-volume-usage", "/var/lib/prometheus")}, volumes
    assert query(prometheus, "sum(kafka_server_replicamanager_underreplicatedpartitions) == 0")
    assert query(prometheus, 'pg_stat_activity_count{datname="clickstream", state="idle"} > 0')
    assert query(prometheus, "redis_connected_clients > 1")  # the exporter and the platform

    def requests_counted() -> float:
        return float(query(prometheus, "nginx_http_requests_total")[0]["value"][1])

    before = requests_counted()
    for _ in range(20):
        urllib.request.urlopen(f"http://127.0.0.1:{platform.port}/healthz", timeout=10).close()
    wait_for("the gateway's requests counted", lambda: requests_counted() >= before + 20, 60, 1)

    postgres = replica(compose_engine, platform, "postgres-0")

    def as_monitoring(database: str, sql: str) -> tuple[int, str]:
        code, output = postgres.exec_run(
            ["sh", "-c", 'PGPASSWORD="$(cat /run/secrets/postgres-monitoring)" exec psql -X '
                         f'-At -h 127.0.0.1 -U monitoring -d {database} -c "{sql}"'],
            user="postgres")
        return code, output.decode()

    code, output = as_monitoring(
        "monitoring", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'clickstream'"
                      " AND state IS NOT NULL")
    assert code == 0 and int(output) > 0, output
    code, output = as_monitoring("clickstream", "SELECT 1")
    assert code != 0 and "permission denied for database" in output, output


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
