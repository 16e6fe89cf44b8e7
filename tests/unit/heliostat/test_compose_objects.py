"""The rendered Compose file read as container objects: keys, waves, specs, health bounds."""

import pytest

from heliostat.config import load_config
from heliostat.drivers.compose_objects import (
    ComposeFileError,
    duration_seconds,
    health_timeout,
    read_project,
)
from heliostat.model import build_model
from heliostat.plan import plan
from heliostat.render import render_manifests


def rendered(config=None) -> dict[str, str]:
    model = build_model(config or load_config(None))
    return {m.filename: m.text() for m in render_manifests(model)}


def test_the_default_platform_is_one_object_per_container():
    project = read_project(rendered())
    keys = {obj.key: obj for obj in project.objects}
    # stateful: one Compose service per replica; stateless: Compose's numbering from 1
    assert {"postgres-0", "kafka-0", "prometheus-0", "prometheus-1", "gateway-1",
            "event-api-1", "event-api-2", "clickstream-migrate"} <= set(keys)
    assert keys["prometheus-1"].service == "prometheus"
    assert keys["event-api-2"].service == "event-api"
    assert keys["event-api-1"].depends_on == ("clickstream-migrate", "redis")
    assert keys["clickstream-migrate"].depends_on == ("kafka", "postgres")
    assert keys["clickstream-migrate"].spec["kind"] == "job"
    assert keys["clickstream-migrate"].spec["restart"] == "no"
    # two replicas of one service differ only in their replica number
    assert keys["event-api-1"].spec_hash != keys["event-api-2"].spec_hash
    assert {**keys["event-api-1"].spec, "replica": 0} == {**keys["event-api-2"].spec, "replica": 0}
    assert project.networks == {"heliostat-heliostat": {"io.heliostat.platform": "heliostat"}}
    assert "heliostat_postgres-0-data" in project.volumes


def test_the_planner_orders_the_default_platform_stores_then_migration_then_services():
    waves = plan(read_project(rendered()).objects, {}).waves
    services = [sorted({step.service for step in wave}) for wave in waves]
    assert "postgres" in services[0] and "kafka" in services[0]
    migrate = next(i for i, wave in enumerate(services) if "clickstream-migrate" in wave)
    api = next(i for i, wave in enumerate(services) if "event-api" in wave)
    assert 0 < migrate < api


def test_dollars_are_compose_escapes_and_come_back_single():
    gateway = next(o for o in read_project(rendered()).objects if o.key == "gateway-1")
    content = gateway.spec["configs"][0]["content"]
    assert "proxy_pass $upstream_1;" in content and "$$" not in content
    assert gateway.spec["configs"][0]["target"] == "/etc/nginx/nginx.conf"
    assert gateway.spec["ports"] == [{"target": 8080, "published": 8080, "protocol": "tcp"}]


def test_secrets_are_files_under_the_state_dir_and_never_values():
    postgres = next(o for o in read_project(rendered()).objects if o.key == "postgres-0")
    secrets = {s["source"]: s for s in postgres.spec["secrets"]}
    assert secrets["postgres-superuser"] == {
        "source": "postgres-superuser", "target": "/run/secrets/postgres-superuser",
        "file": "/var/lib/heliostat/heliostat/secrets/postgres-superuser"}
    assert postgres.spec["mounts"] == [{
        "type": "volume", "source": "heliostat_postgres-0-data",
        "target": "/var/lib/postgresql/data", "read_only": False,
        "labels": {"io.heliostat.platform": "heliostat", "io.heliostat.size": "20Gi"}}]


def test_health_timeouts_follow_the_rendered_health_checks():
    objects = {o.key: o for o in read_project(rendered()).objects}
    # postgres: start_period 60s + (3 retries + 1) * (10s interval + 5s timeout) + 30s to start
    assert objects["postgres-0"].health_timeout == 60 + 4 * 15 + 30
    assert objects["clickstream-migrate"].health_timeout == 900
    assert health_timeout({"kind": "stateless", "healthcheck": None}) == 30


def test_compose_durations():
    assert duration_seconds("10s") == 10
    assert duration_seconds("1m30s") == 90
    assert duration_seconds("500ms") == 0.5
    assert duration_seconds(None) == 0
    with pytest.raises(ComposeFileError, match="not a Compose duration"):
        duration_seconds("ten seconds")


def test_empty_manifests_are_an_empty_platform():
    assert read_project({}).objects == ()


@pytest.mark.parametrize("manifests, message", [
    ({"other.yaml": "a: 1"}, "hold no compose.yaml"),
    ({"compose.yaml": "a: ["}, "not valid YAML"),
    ({"compose.yaml": "name: x\n"}, "no `services`"),
    ({"compose.yaml": "services: {a: {image: i}}"}, "no project `name`"),
    ({"compose.yaml": "name: x\nservices: {a: {command: [x]}}"}, "services.a has no image"),
    ({"compose.yaml": "name: x\nservices: {a: {image: i, ports: ['80:80']}}"}, "long syntax"),
    ({"compose.yaml": "name: x\nservices: {a: {image: i, secrets: [s]}}"}, "secret s"),
    ({"compose.yaml": "name: x\nservices: {a: {image: i, depends_on: {b: {}}}}"},
     "services.b is referenced"),
])
def test_what_the_driver_cannot_apply_is_named(manifests, message):
    with pytest.raises(ComposeFileError, match=message):
        read_project(manifests)


def test_a_sidecar_changes_with_the_container_whose_network_it_shares():
    text = """
name: x
services:
  worker-0:
    image: w
    labels: {io.heliostat.service: worker, io.heliostat.kind: stateful}
  worker-0-logs:
    image: l
    network_mode: "service:worker-0"
    depends_on: {worker-0: {condition: service_started}}
    labels: {io.heliostat.service: worker, io.heliostat.sidecar: logs}
"""
    objects = {o.key: o for o in read_project({"compose.yaml": text}).objects}
    sidecar = objects["worker-0-logs"]
    assert sidecar.service == "worker" and sidecar.depends_on == ()
    assert sidecar.spec["kind"] == "sidecar"
    assert sidecar.spec["network_mode"] == {"key": "worker-0",
                                            "spec_hash": objects["worker-0"].spec_hash}
