"""Airflow on the real engine, as an operator uses it: the example DAG that ships with the
platform runs its tasks on the Celery workers; a task's log is read through the API server
(which fetches it from the worker that ran the task, by its stable hostname), also after
that worker restarted; the workers' log-rotation sidecar deletes logs past the
retention and keeps the rest, saying what it did; and an Airflow image with a new DAG,
pushed to the platform's registry, is rolled out by Commander to every Airflow process."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import tarfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest
import requests

from tests.e2e.heliostat.commander_client import Commander, address_of, brief, history
from tests.infra.compose_platforms import (
    PlatformUnderTest,
    clickstream_admin,
    container_of,
    get_inside,
    remove_platform,
    replica,
    unique_platform_name,
    wait_for,
)

DAG = "heliostat_example"
WORKERS = ("airflow-worker-0", "airflow-worker-1")


class Airflow:
    """Airflow's REST API through the platform's gateway, signed in as its admin."""

    def __init__(self, platform: PlatformUnderTest) -> None:
        self.platform = platform
        self.session = requests.Session()
        password = platform.run("status", "--show-secret", "airflow-admin-password").stdout
        answer = requests.post(platform.url("/airflow/auth/token"), timeout=30, json={
            "username": "admin", "password": password.strip()})
        assert answer.status_code in (200, 201), answer.text
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.platform.url(f"/airflow/api/v2{path}"), params=params,
                                headers={"Accept": "application/json"}, timeout=30)

    def run_dag(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """A new run of `dag_id`, once it has finished; its run id."""
        wait_for(f"DAG {dag_id} to be parsed", lambda: self.get(f"/dags/{dag_id}").ok, 300, 2)
        answer = self.session.post(self.platform.url(f"/airflow/api/v2/dags/{dag_id}/dagRuns"),
                                   json={"logical_date": None, "conf": conf or {}}, timeout=30)
        assert answer.status_code == 200, answer.text
        run_id = answer.json()["dag_run_id"]
        state = wait_for(f"run {run_id} to finish", lambda: (
            s := self.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]) in (
            "success", "failed") and s, 300, 2)
        assert state == "success", self.task_instances(dag_id, run_id)
        return run_id

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)
        assert answer.ok, answer.text
        return answer.json()["task_instances"]

    def log(self, dag_id: str, run_id: str, instance: dict[str, Any]) -> str:
        answer = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/"
                          f"{instance['task_id']}/logs/{instance['try_number']}",
                          map_index=instance["map_index"])
        assert answer.ok, answer.text
        return json.dumps(answer.json()["content"])


@pytest.fixture(scope="module")
def airflow_platform(compose_engine: docker.DockerClient,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformUnderTest]:
    """Airflow with two Celery workers on the platform's own Postgres and Redis, beside
    the clickstream (its Event API and router; no streaming workers) for the warehouse
    batch DAG, Commander rolling out pushed images by itself, and Pilot, which shows
    Airflow's health; the tests below share it."""
    name = unique_platform_name()
    platform = PlatformUnderTest(name, tmp_path_factory.mktemp("airflow-platform"))
    dags = tmp_path_factory.mktemp("dags")
    dags.chmod(0o755)  # Airflow's uid reads it
    platform.dags_folder = dags  # type: ignore[attr-defined]
    platform.config.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {platform.name}
        profile: compose
        gateway: {{http_port: {platform.port}}}
        modules:
          clickstream:
            event_api: {{replicas: 1}}
            workers: {{webhook: {{enabled: false}}, warehouse: {{enabled: false}},
                      redis: {{enabled: false}}}}
          monitoring: {{enabled: false}}
          pilot: {{enabled: true}}
          commander: {{auto_update: true}}
          airflow: {{enabled: true, workers: {{replicas: 2, concurrency: 2}},
                    dags: {{host_folder: "{dags}"}}}}
        """))
    started = time.monotonic()
    installed = platform.run("install", timeout=1500)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    print(f"setup: airflow platform installed in {time.monotonic() - started:.0f}s")
    yield platform
    remove_platform(compose_engine, name)


def test_the_example_dag_runs_on_the_workers_and_a_task_log_outlives_a_worker_restart(
        airflow_platform: PlatformUnderTest, compose_engine: docker.DockerClient) -> None:
    airflow = Airflow(airflow_platform)
    # Celery hands tasks to whichever worker asks first: run until one ran on worker 0.
    for _ in range(5):
        run_id = airflow.run_dag(DAG)
        instances = airflow.task_instances(DAG, run_id)
        assert len(instances) == 6, instances  # shards, 4 mapped work tasks, summary
        assert {i["state"] for i in instances} == {"success"}
        assert {i["hostname"] for i in instances} <= set(WORKERS), instances
        on_worker_0 = [i for i in instances
                       if i["task_id"] == "work" and i["hostname"] == WORKERS[0]]
        if on_worker_0:
            break
    else:
        pytest.fail("five runs of the example DAG and no task ran on airflow-worker-0")

    instance = on_worker_0[0]
    expected = f"shard {instance['map_index']} ran on {WORKERS[0]}"
    assert expected in airflow.log(DAG, run_id, instance)

    worker = replica(compose_engine, airflow_platform, WORKERS[0])
    started_before = worker.attrs["State"]["StartedAt"]
    worker.restart(timeout=60)
    worker.reload()
    assert worker.attrs["State"]["StartedAt"] != started_before
    # The API server has no copy: it asks the worker's log server, under the same
    # hostname, for a file that is still on the worker's own volume.
    wait_for("the log from the restarted worker",
             lambda: expected in airflow.log(DAG, run_id, instance), 180, 2)


def test_the_log_rotation_sidecar_deletes_logs_past_the_retention_and_keeps_the_rest(
        airflow_platform: PlatformUnderTest, compose_engine: docker.DockerClient) -> None:
    worker = replica(compose_engine, airflow_platform, WORKERS[1])
    sidecar = replica(compose_engine, airflow_platform, WORKERS[1], sidecar="log-rotation")
    folder = "/opt/airflow/logs/dag_id=old_dag/run_id=manual__2024-01-01/task_id=t"
    old, fresh = f"{folder}/attempt=1.log", "/opt/airflow/logs/dag_id=new_dag/attempt=1.log"
    # The retention is the default 15 days: one file 16 days old, one 14.
    made = worker.exec_run(["sh", "-c", f"mkdir -p '{folder}' /opt/airflow/logs/dag_id=new_dag"
                            f" && echo old > '{old}' && touch -d '16 days ago' '{old}'"
                            f" && echo fresh > '{fresh}' && touch -d '14 days ago' '{fresh}'"])
    assert made.exit_code == 0, made.output
    since = int(time.time())
    sidecar.kill(signal="SIGHUP")  # a pass now rather than within the hour

    def logged() -> list[dict[str, Any]]:
        lines = sidecar.logs(since=since).decode().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    passes = wait_for("a rotation pass", lambda: [e for e in logged() if e["event"] == "pass"],
                      60)
    assert passes[0]["deleted_files"] >= 1 and passes[0]["errors"] == 0, passes
    deleted = {e["path"] for e in logged() if e["event"] == "deleted"}
    assert old in deleted and fresh not in deleted
    # The old file's folders went with it, up to the DAG's; the fresh one's stayed.
    assert {folder, "/opt/airflow/logs/dag_id=old_dag"} <= deleted
    listing = worker.exec_run(["find", "/opt/airflow/logs", "-name", "*.log"]).output.decode()
    assert fresh in listing and old not in listing
    # Task logs of the DAG runs above are fresh: none was touched.
    assert not any("dag_id=heliostat_example" in path for path in deleted)

    # Its metrics, on the worker's address: what Prometheus scrapes as airflow-worker.
    metrics = get_inside(worker, "http://127.0.0.1:9101/metrics")
    values = dict(line.split(" ", 1) for line in metrics.splitlines()
                  if line and not line.startswith("#"))
    assert float(values["airflow_log_rotation_deleted_files_total"]) >= 1
    assert 0 < float(values["airflow_log_volume_used_ratio"]) < 1


def test_the_scheduler_heartbeat_its_alert_watches_reaches_the_statsd_exporter(
        airflow_platform: PlatformUnderTest, compose_engine: docker.DockerClient) -> None:
    """`airflow_scheduler_heartbeat`, as the AirflowSchedulerHeartbeatMissing rule names
    it, keeps counting."""
    statsd = container_of(compose_engine, airflow_platform, "airflow-statsd")

    def beats() -> list[float]:
        return [float(line.split()[1]) for line in get_inside(
            statsd, "http://127.0.0.1:9102/metrics").splitlines()
            if line.startswith("airflow_scheduler_heartbeat ")]

    first = wait_for("a scheduler heartbeat", beats, 60)[0]
    wait_for("the next heartbeat", lambda: beats()[0] > first, 60)


def test_the_warehouse_batch_dag_loads_a_window_once_however_often_it_runs(
        airflow_platform: PlatformUnderTest, compose_engine: docker.DockerClient) -> None:
    """Events sent to the Event API for a destination loaded in batches (`load: batch`)
    are in the warehouse after the batch DAG ran for their window, once each, also after
    the same window ran again. The warehouse is a schema of the platform's Postgres."""
    platform = airflow_platform
    password = platform.run("status", "--show-secret", "postgres-clickstream").stdout.strip()
    app = clickstream_admin(compose_engine, platform, "app", "create", "shop")
    destination = clickstream_admin(
        compose_engine, platform, "destination", "create", str(app["id"]), "--name", "dwh",
        "--kind", "warehouse", "--setting", "load=batch", "--setting", "schema=analytics",
        "--setting", f"dsn=postgresql://clickstream:{password}@postgres:5432/clickstream")
    router = container_of(compose_engine, platform, "event-router")

    def routed() -> float:
        metrics = get_inside(router, "http://127.0.0.1:9100/metrics")
        return sum(float(line.split()[1]) for line in metrics.splitlines() if line.startswith(
            f'clickstream_events_routed_total{{destination="{destination["id"]}"}}'))

    start = datetime.datetime.now(datetime.timezone.utc)
    ids = [f"batch-{uuid.uuid4()}" for _ in range(3)]
    # The router learns of the new destination from Postgres's notification: send until
    # it routed one to it (an event before that is not its).
    def sent_and_routed() -> bool:
        answer = requests.post(platform.url("/v1/batch"), auth=(app["write_key"], ""),
                               timeout=30, json={"batch": [
                                   {"type": "track", "event": "Order Completed",
                                    "userId": f"u-{i}", "messageId": message_id,
                                    "properties": {"total": i}}
                                   for i, message_id in enumerate(ids)]})
        assert answer.status_code == 200, answer.text
        return routed() >= len(ids)
    wait_for("the router routing to the new destination", sent_and_routed, 60, 1)
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=1)
    wait_for("the window's end to be past", lambda: datetime.datetime.now(
        datetime.timezone.utc) > end, 5, 0.2)
    window = {"start": start.isoformat(), "end": end.isoformat()}

    def loaded() -> list[tuple[str, int]]:
        postgres = replica(compose_engine, platform, "postgres-0")
        result = postgres.exec_run(["psql", "-X", "-At", "-F", " ", "-d", "clickstream", "-c",
                                    "SELECT id, count(*) FROM analytics.tracks GROUP BY id"],
                                   user="postgres")
        assert result.exit_code == 0, result.output.decode()
        return sorted((i, int(n)) for i, n in (line.split() for line in
                                               result.output.decode().splitlines()))

    airflow = Airflow(platform)
    dag = "heliostat_warehouse_batches"
    for _ in range(2):  # the same window twice
        run_id = airflow.run_dag(dag, conf=window)
        (load,) = [i for i in airflow.task_instances(dag, run_id) if i["task_id"] == "load"]
        assert load["hostname"] in WORKERS
        # Each send above is in the window: the ids more than once, each loaded once.
        assert f"destination {destination['id']}: " in airflow.log(dag, run_id, load)
        assert loaded() == [(i, 1) for i in sorted(ids)]


def test_a_dag_dropped_into_the_host_folder_runs_on_the_workers(
        airflow_platform: PlatformUnderTest) -> None:
    """The demo's way to DAGs: a file written into `modules.airflow.dags.host_folder` on the
    installed platform's host is found, parsed and run, with no image built."""
    marker = f"hello from the host folder {uuid.uuid4().hex}"
    dag_id = f"host_folder_{uuid.uuid4().hex[:8]}"
    path = airflow_platform.dags_folder / f"{dag_id}.py"  # type: ignore[attr-defined]
    path.write_text(textwrap.dedent(f"""\
        import datetime
        from airflow.sdk import dag, task

        @dag(dag_id={dag_id!r}, schedule=None, start_date=datetime.datetime(2024, 1, 1),
             is_paused_upon_creation=False)
        def from_the_host():
            @task
            def hello():
                print({marker!r})
            hello()

        from_the_host()
        """))
    path.chmod(0o644)
    airflow = Airflow(airflow_platform)
    run_id = airflow.run_dag(dag_id)
    (instance,) = airflow.task_instances(dag_id, run_id)
    assert instance["hostname"] in WORKERS
    assert marker in airflow.log(dag_id, run_id, instance)


COMMANDER_DAG = '''\
"""Baked into the image Commander rolls out: it exists only in the pushed image."""
import datetime

from airflow.sdk import dag, task


@dag(dag_id="commander_e2e", schedule=None, start_date=datetime.datetime(2024, 1, 1),
     catchup=False, is_paused_upon_creation=False)
def commander_e2e():
    @task
    def hello():
        print("rolled out by Commander")
        return 42

    hello()


commander_e2e()
'''


def with_dag(engine: docker.DockerClient, repository: str, tag: str) -> None:
    """The platform's Airflow image with one more DAG, as `repository:tag`."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        data = COMMANDER_DAG.encode()
        info = tarfile.TarInfo("commander_e2e.py")
        info.size, info.uid, info.gid, info.mode = len(data), 50000, 50000, 0o644
        tar.addfile(info, io.BytesIO(data))
    # Created, never started: the commit keeps the image's own entrypoint and command.
    base = engine.containers.create("heliostat/airflow:0.1.0")
    try:
        assert base.put_archive("/opt/airflow/dags", archive.getvalue())
        base.commit(repository, tag)
    finally:
        base.remove(force=True)


def test_an_airflow_image_pushed_with_a_new_dag_rolls_every_airflow_process(
        airflow_platform: PlatformUnderTest, tcp_proxy: Any,
        compose_engine: docker.DockerClient) -> None:
    """DAG deployment: push an image, and Commander (its defaults: a push of `airflow` rolls
    every Airflow process) rolls it out; the new DAG appears and runs. Last in this file:
    the platform then runs the pushed image."""
    platform = airflow_platform

    def secret(name: str) -> str:
        return platform.run("status", "--show-secret", name).stdout.strip()

    commander = Commander(platform, compose_engine, secret("commander-token"),
                          secret("commander-webhook-secret"))
    revisions_before = len(history(platform))
    group = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor",
             "airflow-triggerer", "airflow-worker")
    proxy = tcp_proxy(address_of(compose_engine, platform, "registry"), 5000)
    repository = f"127.0.0.1:{proxy.port}/airflow"
    tag = f"0.1.{os.getpid()}"  # the default pattern takes versions
    with_dag(compose_engine, repository, tag)
    try:
        for line in compose_engine.images.push(repository, tag, stream=True, decode=True):
            assert "error" not in line, line
        digests = compose_engine.images.get(f"{repository}:{tag}").attrs["RepoDigests"]
        digest = next(d for d in digests if d.startswith(repository)).rpartition("@")[2]
        description = f"commander: registry push airflow@{digest}"
        operation = wait_for("the push's operation", lambda: next(
            (op for op in commander.operations() if op["description"] == description), None),
            timeout=60)
        assert operation["services"] == ["airflow-migrate", *group]
        done = commander.wait(operation["id"], timeout=1500)
        assert done["state"] == "deployed", brief(done)
        # One revision, from Commander, carrying the push.
        revisions = history(platform)
        assert [(r["origin"], r["description"], r["status"]) for r in revisions[-1:]] == [
            ("commander", description, "deployed")]
        assert len(revisions) == revisions_before + 1
        rolled = [container_of(compose_engine, platform, service) for service in group
                  if service != "airflow-worker"]
        rolled += [replica(compose_engine, platform, worker) for worker in WORKERS]
        for container in rolled:
            assert container.attrs["Config"]["Image"] == f"{repository}@{digest}", container.name

        scheduler = container_of(compose_engine, platform, "airflow-scheduler")

        def airflow(*args: str) -> Any:
            result = scheduler.exec_run(["airflow", *args, "-o", "json"])
            assert result.exit_code == 0, result.output.decode()
            return json.loads(result.output.decode().strip().splitlines()[-1])

        wait_for("the new DAG", lambda: any(d["dag_id"] == "commander_e2e"
                                            for d in airflow("dags", "list")), 300, every=5)
        airflow("dags", "trigger", "commander_e2e")
        runs = wait_for("the DAG run to succeed", lambda: (
            found := airflow("dags", "list-runs", "commander_e2e")) and all(
            r["state"] in ("success", "failed") for r in found) and found, 600, every=5)
        assert [r["state"] for r in runs] == ["success"], runs
        # Pilot sees the scheduler's heartbeat and the worker that ran the DAG, and links
        # to Airflow's UI on the same gateway.
        shown = platform.pilot().get(platform.url("/api/v1/airflow"), timeout=30).json()
        assert shown["healthy"], shown
        components = {c["name"]: c for c in shown["components"]}
        assert components["scheduler"]["status"] == "healthy"
        assert components["scheduler"]["heartbeat"]
        assert [w.startswith("celery@") for w in shown["workers"]] == [True] * len(WORKERS), \
            shown
        assert requests.get(platform.url(shown["link"]), timeout=30).status_code == 200
        audited = [e for e in commander.audit() if e["operation"] == operation["id"]]
        assert [(e["action"], e["outcome"]) for e in audited] == [
            ("registry push", "accepted"), ("registry", "deployed")]
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            compose_engine.images.remove(f"{repository}:{tag}", force=True)
