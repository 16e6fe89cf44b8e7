"""Pilot's charts and alerts against a real Prometheus and a real Alertmanager (the
platform's own images, on the host's network), and its Airflow card when Airflow cannot
be reached: the charts are Prometheus's answers to the clickstream metrics a process of
this test exposes, named for the destinations in a real clickstream database; the
overview lists the alerts Alertmanager holds, the most severe first, leaving out the
silenced; each upstream down is said where its part would be, and nothing else fails.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import docker.errors
import psycopg
import pytest
import requests
from flask.testing import FlaskClient
from pilot_testing import CommanderUnderTest, pilot_settings, sign_in
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from clickstream import storage
from clickstream.migrate import migrate
from pilot.app import create_app
from tests.infra.processes import free_port
from tests.infra.run_dir import OWNER_LABEL, RunDir

PROMETHEUS_IMAGE = "heliostat/prometheus:0.1.0"
ALERTMANAGER_IMAGE = "heliostat/alertmanager:0.1.0"


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f}s")
        time.sleep(0.25)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def container(client: docker.DockerClient, run: RunDir, image: str, command: list[str],
              config: Path, mount: str) -> Any:
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {image} is missing: run `make images`", pytrace=False)
    return client.containers.run(
        image, command, detach=True, network_mode="host", labels={OWNER_LABEL: run.token},
        volumes={str(config): {"bind": mount, "mode": "ro"}})


class Clickstream:
    """The clickstream metrics of one process, as the Event API and a worker export them,
    on a port of its own; the counters go up while the test runs."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter("clickstream_events_received_total", "", registry=self.registry)
        self.rejected = Counter("clickstream_events_rejected_total", "", ["reason"],
                                registry=self.registry)
        self.delivered = Counter("clickstream_events_delivered_total", "",
                                 ["destination", "kind"], registry=self.registry)
        self.lag = Gauge("clickstream_consumer_lag", "", ["destination"], registry=self.registry)
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, "127.0.0.1",
                                                     registry=self.registry)
        self.running = True
        threading.Thread(target=self._traffic, daemon=True).start()

    def _traffic(self) -> None:
        self.lag.labels("router").set(3)
        self.lag.labels("1").set(250)
        while self.running:
            self.received.inc(20)
            self.delivered.labels("1", "webhook").inc(10)
            time.sleep(0.1)

    def stop(self) -> None:
        self.running = False
        self.server.shutdown()


@pytest.fixture(scope="module")
def monitoring(docker_client: docker.DockerClient, testbed_run: RunDir,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Prometheus scraping the test's clickstream metrics every second, and Alertmanager."""
    metrics = Clickstream()
    folder = tmp_path_factory.mktemp("monitoring")
    folder.chmod(0o755)
    prometheus_port, alertmanager_port = free_port(), free_port()
    (folder / "prometheus.yml").write_text(textwrap.dedent(f"""\
        global: {{scrape_interval: 1s, evaluation_interval: 1s}}
        scrape_configs:
          - job_name: clickstream
            static_configs: [{{targets: ["127.0.0.1:{metrics.port}"]}}]
        """))
    (folder / "alertmanager.yml").write_text(
        "route: {receiver: none}\nreceivers: [{name: none}]\n")
    for name in ("prometheus.yml", "alertmanager.yml"):
        (folder / name).chmod(0o644)
    started = time.monotonic()
    prometheus = container(docker_client, testbed_run, PROMETHEUS_IMAGE, [
        "prometheus", "--config.file=/etc/test/prometheus.yml", "--storage.tsdb.path=/tmp/tsdb",
        f"--web.listen-address=127.0.0.1:{prometheus_port}"],
        folder, "/etc/test")
    alertmanager = container(docker_client, testbed_run, ALERTMANAGER_IMAGE, [
        "alertmanager", "--config.file=/etc/test/alertmanager.yml",
        "--storage.path=/tmp/alertmanager", "--cluster.listen-address=",
        f"--web.listen-address=127.0.0.1:{alertmanager_port}"], folder, "/etc/test")
    urls = {"prometheus": f"http://127.0.0.1:{prometheus_port}",
            "alertmanager": f"http://127.0.0.1:{alertmanager_port}"}
    try:
        wait_for(lambda: answers(urls["prometheus"] + "/-/ready"), 60, "Prometheus ready")
        wait_for(lambda: answers(urls["alertmanager"] + "/-/ready"), 60, "Alertmanager ready")
        print(f"setup: Prometheus and Alertmanager up in {time.monotonic() - started:.1f}s")
        yield urls
    finally:
        metrics.stop()
        for running in (prometheus, alertmanager):
            running.remove(force=True)


@pytest.fixture
def clickstream_dsn(postgres) -> Iterator[str]:
    with postgres.fresh_database() as dsn:
        migrate(dsn)
        with psycopg.connect(dsn) as conn:
            shop = storage.create_app(conn, "Shop")
            hook = storage.create_destination(conn, shop.id, "Hook", "webhook",
                                              {"url": "http://127.0.0.1:9/"})
            assert hook.id == 1
        yield dsn


def pilot(pg_database: str, commander: CommanderUnderTest, **changes: Any) -> FlaskClient:
    client = create_app(pilot_settings(pg_database, commander.url, **changes)).test_client()
    assert sign_in(client).status_code == 303
    return client


@pytest.fixture
def watched(pg_database, commander, clickstream_dsn, monitoring) -> FlaskClient:
    """Pilot given Prometheus (scraping every second), Alertmanager and the clickstream
    database; signed in as admin."""
    return pilot(pg_database, commander, clickstream_dsn=clickstream_dsn,
                 prometheus_url=monitoring["prometheus"], prometheus_scrape_seconds=1,
                 alertmanager_url=monitoring["alertmanager"])


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def charts(client: FlaskClient, window: str = "15m") -> dict[str, Any]:
    answer = client.get(f"/api/v1/charts?window={window}")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return {"document": answer.get_json(), **{c["id"]: c for c in answer.get_json()["charts"]}}


def test_charts_show_the_rates_prometheus_computes_named_for_destinations(watched):
    def received_a_rate() -> dict[str, Any] | None:
        found = charts(watched)
        series = found["received"]["series"]
        return found if series and (series[0]["latest"] or 0) > 0 else None

    found = wait_for(received_a_rate, 60, "a received rate in the charts")
    document = found["document"]
    assert [c["id"] for c in document["charts"]] == [
        "received", "rejected", "delivered", "retried", "dead_lettered", "lag"]
    assert document["problem"] is None and document["step"] == 15
    assert document["end"] % 15 == 0 and document["end"] - document["start"] == 900
    assert document["times"] == list(range(document["start"], document["end"] + 1, 15))
    received = found["received"]["series"]
    assert [s["name"] for s in received] == ["total"]
    assert len(received[0]["values"]) == len(document["times"])
    # 20 events every ~0.1 s: a rate in the tens to low hundreds per second.
    assert 20 < received[0]["latest"] < 400, received[0]["latest"]
    # Destination 1 by its name and app; the router's lag by what it is.
    wait_for(lambda: charts(watched)["delivered"]["series"], 30, "a delivered series")
    found = charts(watched)
    assert [s["name"] for s in found["delivered"]["series"]] == ["Hook (Shop)"]
    lag = {s["name"]: s["latest"] for s in found["lag"]["series"]}
    assert lag == {"Hook (Shop)": 250, "router (all events)": 3}
    # Nothing rejected, retried or dead-lettered: no series, and the chart says why.
    for empty in ("rejected", "retried", "dead_lettered"):
        assert found[empty]["series"] == [] and found[empty]["empty"]

    page = watched.get("/charts?window=15m")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "vendor/uplot/uPlot.iife.min.js" in html and "Hook (Shop)" in html
    assert 'aria-current="true">15 minutes' in html
    embedded = html.split('<script type="application/json" id="chart-data">')[1]
    assert json.loads(embedded.split("</script>")[0])["window"] == "15m"


@pytest.mark.parametrize("window", ["", "2d", "1h;drop", "%00"])
def test_an_unknown_window_is_refused_with_the_ones_there_are(watched, window):
    for path in (f"/api/v1/charts?window={window}", f"/charts?window={window}"):
        answer = watched.get(path, headers={"Accept": "application/json"})
        assert answer.status_code == 400
        assert answer.get_json()["error"] == "`window` must be one of 15m, 1h, 6h, 24h, 7d"


def test_every_window_answers(watched):
    for window, step in (("1h", 30), ("6h", 120), ("24h", 600), ("7d", 3600)):
        document = charts(watched, window)["document"]
        assert document["step"] == step and document["problem"] is None
        assert len(document["times"]) == (document["end"] - document["start"]) // step + 1


def post_alerts(url: str, alerts: list[dict[str, Any]]) -> None:
    starts = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    answer = requests.post(f"{url}/api/v2/alerts", timeout=5, json=[
        {"startsAt": starts, **alert} for alert in alerts])
    assert answer.status_code == 200, answer.text


def test_the_overview_lists_the_alerts_firing_most_severe_first(watched, monitoring):
    url = monitoring["alertmanager"]
    post_alerts(url, [
        {"labels": {"alertname": "DeadLettersGrowing", "severity": "warning",
                    "destination": "1"},
         "annotations": {"summary": "Events to 1 are going to dead letters"}},
        {"labels": {"alertname": "ServiceDown", "severity": "critical", "job": "pilot"},
         "annotations": {"summary": "pilot on pilot:8000 is not answering /metrics"}},
        {"labels": {"alertname": "Silenced", "severity": "critical"},
         "annotations": {"summary": "muted by a silence"}}])
    now = datetime.now(UTC)
    silence = requests.post(f"{url}/api/v2/silences", timeout=5, json={
        "matchers": [{"name": "alertname", "value": "Silenced", "isRegex": False}],
        "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "test", "comment": "a silenced alert is not shown"})
    assert silence.status_code == 200, silence.text

    def listed() -> list[dict[str, Any]] | None:
        found = watched.get("/api/v1/alerts").get_json()["alerts"]
        names = [a["name"] for a in found]
        return found if names == ["ServiceDown", "DeadLettersGrowing"] else None

    found = wait_for(listed, 15, "the two alerts not silenced, critical first")
    assert found[0]["severity"] == "critical"
    assert found[0]["summary"] == "pilot on pilot:8000 is not answering /metrics"
    assert found[1]["labels"]["destination"] == "1"
    page = watched.get("/").get_data(as_text=True)
    assert "Active alerts" in page
    assert page.index("ServiceDown") < page.index("DeadLettersGrowing")
    assert "muted by a silence" not in page


def test_each_upstream_down_is_said_where_its_part_would_be(pg_database, commander):
    client = pilot(pg_database, commander, prometheus_url=closed_url(),
                   alertmanager_url=closed_url(), airflow_api_url=closed_url(),
                   flower_url=closed_url())
    found = charts(client)
    problems = {c["problem"] for c in found["document"]["charts"]}
    assert len(problems) == 1 and "Prometheus is unreachable" in problems.pop()
    page = client.get("/charts")
    assert page.status_code == 200 and "Prometheus is unreachable" in page.get_data(as_text=True)

    alerts = client.get("/api/v1/alerts")
    assert alerts.status_code == 503 and "Alertmanager is unreachable" in alerts.get_json()["error"]
    overview = client.get("/")
    assert overview.status_code == 200  # Commander answers; the rest says what is down
    html = overview.get_data(as_text=True)
    assert "Alertmanager is unreachable" in html
    assert "the Airflow API server is unreachable" in html and "Flower is unreachable" in html
    assert 'href="/airflow/"' in html

    airflow = client.get("/api/v1/airflow").get_json()
    assert airflow["healthy"] is False and airflow["workers"] is None
    assert "unreachable" in airflow["problem"] and "unreachable" in airflow["workers_problem"]
    health = client.get("/health").get_json()
    assert health["status"] == "degraded" and "unreachable" in health["checks"]["prometheus"]


def test_modules_not_enabled_say_how_to_enable_them(pg_database, commander):
    client = pilot(pg_database, commander)
    page = client.get("/charts").get_data(as_text=True)
    assert "modules.monitoring.enabled: true" in page and "uPlot" not in page
    for path, module in (("/api/v1/charts", "monitoring"), ("/api/v1/alerts", "monitoring"),
                         ("/api/v1/airflow", "airflow")):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert f"modules.{module}.enabled" in answer.get_json()["error"]
    overview = client.get("/").get_data(as_text=True)
    assert "Active alerts" not in overview and "Open Airflow" not in overview
