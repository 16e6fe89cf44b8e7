"""Rendered manifests: pinned by golden files, and checked for what each target needs."""

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from heliostat.config import config_from_document
from heliostat.model import build_model
from heliostat.render import render_manifests, write_manifests, yaml_text
from heliostat.yaml_source import load_yaml_text

GOLDEN = Path(__file__).parent / "golden"


def rendered(config) -> dict[str, str]:
    return {m.filename: m.text() for m in render_manifests(build_model(config))}


def test_examples_match_their_golden_files(example):
    """`make golden` rewrites them after an intended change."""
    files = rendered(example)
    directory = GOLDEN / Path(example.document.file).stem
    if os.environ.get("HELIOSTAT_UPDATE_GOLDEN"):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        for name, text in files.items():
            (directory / name).write_text(text)
    expected = {p.name: p.read_text() for p in sorted(directory.iterdir())}
    assert sorted(files) == sorted(expected)
    for name, text in files.items():
        assert text == expected[name], f"{directory.name}/{name} differs from its golden file"


def test_rendering_is_deterministic(example):
    assert rendered(example) == rendered(example)


@pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")
def test_libyaml_and_pyyaml_write_the_same_text(example):
    """Rendering uses libyaml where PyYAML has it: the files must not depend on that."""
    for manifest in render_manifests(build_model(example)):
        assert (yaml_text(manifest.body, yaml.CSafeDumper)
                == yaml_text(manifest.body, yaml.SafeDumper)), manifest.filename


def test_output_parses(example, tmp_path: Path):
    for path in write_manifests(render_manifests(build_model(example)), tmp_path):
        text = path.read_text()
        assert json.loads(text) if path.suffix == ".json" else list(yaml.safe_load_all(text))


@pytest.mark.parametrize("profile", ["compose", "kubernetes", "marathon"])
def test_secret_values_never_reach_the_manifests(profile, tmp_path: Path):
    """The only secrets a config can name are password files: their contents stay out."""
    for store in ("postgres", "redis"):
        (tmp_path / store).write_text(f"{store}-s3cret-value\n")
    config = config_from_document(load_yaml_text(
        f"apiVersion: heliostat/v1\nname: acme\nprofile: {profile}\n"
        f"stores:\n  postgres: {{mode: external, host: db, database: d, user: u, "
        f"password_file: {tmp_path / 'postgres'}}}\n"
        f"  redis: {{mode: external, host: r, password_file: {tmp_path / 'redis'}}}\n",
        "platform.yaml"))
    text = "".join(m.text() for m in render_manifests(build_model(config)))
    assert "s3cret" not in text
    assert str(tmp_path) not in text  # not even the path on the installing host
    assert "postgres-external" in text and "redis-external" in text  # by reference


def test_compose_file(example_config):
    (manifest,) = render_manifests(build_model(example_config("compose")))
    compose = manifest.body
    services = compose["services"]
    # stateful: one Compose service per replica, its own volume, the service name as alias
    assert {"prometheus-0", "prometheus-1", "airflow-worker-0", "airflow-worker-1"} <= set(services)
    assert "prometheus" not in services
    assert services["prometheus-1"]["volumes"] == [
        {"type": "volume", "source": "prometheus-1-data", "target": "/var/lib/prometheus"}]
    assert services["prometheus-1"]["networks"]["platform"]["aliases"] == ["prometheus"]
    assert {"prometheus-0-data", "prometheus-1-data"} <= set(compose["volumes"])
    # sidecar shares its replica's log volume
    sidecar = services["airflow-worker-1-log-rotation"]
    assert sidecar["volumes"][0]["source"] == "airflow-worker-1-logs"
    # stateless: replicas, health check, dependencies with the right conditions
    api = services["event-api"]
    assert api["deploy"]["replicas"] == 2
    assert api["healthcheck"]["test"][:2] == ["CMD", "python3"]
    assert api["depends_on"]["clickstream-migrate"] == {
        "condition": "service_completed_successfully"}
    # only the gateway publishes a port
    published = [n for n, s in services.items() if "ports" in s]
    assert published == ["gateway"]
    # secrets are file references under the platform's state directory
    assert compose["secrets"]["pilot-secret-key"] == {
        "file": "/var/lib/heliostat/acme/secrets/pilot-secret-key"}
    assert "content" in compose["configs"]["prometheus-prometheus.yml"]


def by_kind(manifests) -> dict[tuple[str, str], dict]:
    return {(m.kind, m.name): m.body for m in manifests}


def test_kubernetes_objects(example_config):
    objects = by_kind(render_manifests(build_model(example_config("kubernetes"))))
    assert all(o["metadata"].get("namespace") in (None, "acme-data") for o in objects.values())
    kafka = objects[("StatefulSet", "kafka")]
    assert kafka["spec"]["replicas"] == 3 and kafka["spec"]["serviceName"] == "kafka"
    claim = kafka["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert objects[("Service", "kafka")]["spec"]["clusterIP"] == "None"  # headless
    worker = objects[("StatefulSet", "airflow-worker")]["spec"]["template"]["spec"]
    assert [c["name"] for c in worker["containers"]] == ["airflow-worker", "log-rotation"]
    assert objects[("Deployment", "event-api")]["spec"]["replicas"] == 4
    assert ("PodDisruptionBudget", "event-api") in objects
    assert ("PodDisruptionBudget", "commander") not in objects  # one replica
    assert ("Job", "clickstream-migrate") in objects
    assert ("Deployment", "gateway") not in objects  # the Ingress routes instead
    ingress = objects[("Ingress", "acme")]["spec"]
    assert ingress["ingressClassName"] == "nginx"
    paths = {p["path"]: p["backend"]["service"]["name"]
             for p in ingress["rules"][0]["http"]["paths"]}
    assert paths == {"/v1/": "event-api", "/": "pilot", "/airflow/": "airflow-api-server",
                     "/flower/": "airflow-flower"}
    # secrets only by reference
    pilot = objects[("Deployment", "pilot")]["spec"]["template"]["spec"]
    assert {"name": "secret-pilot-secret-key",
            "secret": {"secretName": "pilot-secret-key", "defaultMode": 256}} in pilot["volumes"]
    assert not any(kind == "Secret" for kind, _ in objects)
    # only Commander may talk to the API server
    assert objects[("Deployment", "commander")]["spec"]["template"]["spec"][
        "serviceAccountName"] == "commander"
    assert pilot["automountServiceAccountToken"] is False


def test_marathon_group(example_config):
    manifests = render_manifests(build_model(example_config("marathon")))
    # Services with sidecars (the exporters, the log rotation) are pods.
    assert [m.filename for m in manifests] == [
        "group-acme.json", "pod-postgres-0.json", "pod-redis-0.json", "pod-registry-0.json",
        "pod-gateway.json", "pod-prometheus-0.json", "pod-prometheus-1.json",
        "pod-airflow-worker-0.json", "pod-airflow-worker-1.json"]
    group = manifests[0].body
    assert group["id"] == "/data/acme"
    apps = {a["id"]: a for a in group["apps"]}
    assert "/data/acme/kafka-0" not in apps  # Kafka is external here
    pods = {m.body["id"]: m.body for m in manifests[1:]}
    postgres = pods["/data/acme/postgres-0"]
    assert postgres["volumes"][0] == {"name": "data", "persistent": {"size": 20480}}
    assert postgres["scheduling"] == {
        "upgrade": {"minimumHealthCapacity": 0, "maximumOverCapacity": 0},
        "unreachableStrategy": "disabled"}
    assert [c["name"] for c in postgres["containers"]] == [
        "postgres", "volume-usage", "exporter"]
    api = apps["/data/acme/event-api"]
    assert api["instances"] == 3
    assert api["healthChecks"][0]["protocol"] == "MESOS_HTTP"
    assert api["upgradeStrategy"]["minimumHealthCapacity"] == 1
    assert "/data/acme/clickstream-migrate" in api["dependencies"]
    assert api["env"]["KAFKA_BOOTSTRAP"].startswith("kafka-1.acme.internal:9092,")
    gateway = pods["/data/acme/gateway"]
    assert gateway["containers"][0]["endpoints"][0]["hostPort"] == 80
    assert gateway["networks"] == [{"mode": "container/bridge"}]
    assert json.loads(gateway["environment"]["HELIOSTAT_FILES"])[
        "/etc/nginx/nginx.conf"].startswith("# The gateway")
    pod = pods["/data/acme/airflow-worker-0"]
    assert [c["name"] for c in pod["containers"]] == ["airflow-worker", "log-rotation"]
    assert pod["volumes"][0] == {"name": "logs", "persistent": {"size": 10240}}


def test_write_removes_files_a_previous_render_left(tmp_path: Path, default_config):
    kubernetes = render_manifests(build_model(default_config.with_profile("kubernetes")))
    write_manifests(kubernetes, tmp_path)
    stale = tmp_path / "deployment-event-api.yaml"
    assert stale.exists()
    smaller = [m for m in kubernetes if m.name != "event-api"]
    write_manifests(smaller, tmp_path)
    assert not stale.exists()
    assert len(list(tmp_path.glob("*.yaml"))) == len(smaller)


@pytest.mark.parametrize("profile", ["compose", "kubernetes", "marathon"])
def test_every_profile_renders_every_module(profile, default_config):
    values = dict(default_config.values)
    values["modules"] = {**values["modules"], "airflow": {**values["modules"]["airflow"],
                                                          "enabled": True}}
    config = type(default_config)(values, default_config.document).with_profile(profile)
    names = " ".join(m.text() for m in render_manifests(build_model(config)))
    for service in ("airflow-scheduler", "event-router", "alertmanager", "commander"):
        assert service in names


def test_a_host_folder_is_mounted_read_only_on_every_target():
    config = config_from_document(load_yaml_text(
        "apiVersion: heliostat/v1\nname: x\nprofile: compose\n"
        "modules: {airflow: {enabled: true, dags: {host_folder: /srv/dags}}}\n", "p.yaml"))
    model = build_model(config)
    assert model.service("airflow-dag-processor").host_folders == [
        {"host_path": "/srv/dags", "path": "/opt/airflow/dags/host"}]
    assert model.service("airflow-scheduler").host_folders == []  # it reads no DAG files
    (compose,) = render_manifests(model)
    mounts = compose.body["services"]["airflow-worker-0"]["volumes"]
    assert {"type": "bind", "source": "/srv/dags", "target": "/opt/airflow/dags/host",
            "read_only": True} in mounts
    kubernetes = {m.filename: m.body for m in render_manifests(
        build_model(config.with_profile("kubernetes")))}
    pod = kubernetes["deployment-airflow-dag-processor.yaml"]["spec"]["template"]["spec"]
    assert {"name": "host-1", "hostPath": {"path": "/srv/dags", "type": "Directory"}} in (
        pod["volumes"])
    assert {"name": "host-1", "mountPath": "/opt/airflow/dags/host", "readOnly": True} in (
        pod["containers"][0]["volumeMounts"])
    marathon = render_manifests(build_model(config.with_profile("marathon")))
    apps = {a["id"]: a for a in marathon[0].body["apps"]}
    assert {"containerPath": "/opt/airflow/dags/host", "hostPath": "/srv/dags", "mode": "RO"} in (
        apps["/x/airflow-dag-processor"]["container"]["volumes"])
    worker = next(m.body for m in marathon if m.body["id"] == "/x/airflow-worker-0")
    assert {"name": "host-1", "host": "/srv/dags"} in worker["volumes"]
