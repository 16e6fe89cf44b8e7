from pathlib import Path

import pytest

from heliostat.config import load_config
from heliostat.model import CatalogError, build_model, dependency_waves


def test_default_platform_runs_every_module_but_airflow(default_config):
    model = build_model(default_config)
    modules = {s.module for s in model.services}
    assert modules == {"core", "clickstream", "pilot", "commander", "monitoring"}
    assert {"postgres", "redis", "kafka", "gateway", "registry", "event-api", "event-router",
            "webhook-worker", "warehouse-worker", "redis-worker", "pilot", "commander",
            "prometheus", "alertmanager"} <= {s.name for s in model.services}


def test_config_values_reach_the_services(example_config):
    model = build_model(example_config("kubernetes"))
    assert model.service("event-api").replicas == 4
    assert model.service("kafka").replicas == 3
    assert model.service("prometheus").kind == "stateful"
    assert model.service("prometheus").replicas == 2
    worker = model.service("airflow-worker")
    assert (worker.kind, worker.replicas) == ("stateful", 3)
    assert worker.volumes == [{"name": "logs", "path": "/opt/airflow/logs", "size": "10Gi"}]
    (sidecar,) = worker.sidecars
    assert sidecar["volumes"] == ["logs"] and "--retention-days=15" in sidecar["command"]
    assert model.service("kafka").env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == (
        "0@kafka-0.kafka:9093,1@kafka-1.kafka:9093,2@kafka-2.kafka:9093")
    assert model.service("event-api").image_ref == (
        "registry.acme.internal:5000/heliostat/clickstream:0.1.0")


def test_an_external_store_is_not_run_and_not_waited_for(example_config):
    model = build_model(example_config("compose"))
    names = {s.name for s in model.services}
    assert "postgres" not in names
    assert "postgres" not in model.service("clickstream-migrate").depends_on
    env = model.service("event-api").env
    assert (env["POSTGRES_HOST"], env["POSTGRES_DB"]) == ("pg.acme.internal", "heliostat")
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres-external"
    assert model.secrets["postgres-external"] == {
        "from_file": "/etc/heliostat/postgres-password",
        "description": "Password of the external Postgres."}


def test_host_names_follow_the_profile(default_config):
    for profile, bootstrap in [("compose", "kafka-0:9092"), ("kubernetes", "kafka-0.kafka:9092"),
                               ("marathon", "kafka-0-heliostat.marathon.mesos:9092")]:
        model = build_model(default_config.with_profile(profile))
        assert model.service("event-router").env["KAFKA_BOOTSTRAP"] == bootstrap


def test_waves_put_every_service_after_what_it_depends_on(example):
    model = build_model(example)
    position = {name: i for i, wave in enumerate(model.waves()) for name in wave}
    assert set(position) == {s.name for s in model.services}
    for service in model.services:
        for dependency in service.depends_on:
            assert position[dependency] < position[service.name]


def test_a_dependency_cycle_is_refused():
    with pytest.raises(CatalogError, match="cycle"):
        dependency_waves({"a": ["b"], "b": ["a"], "c": []})


def test_config_files_are_rendered_from_the_model(default_config):
    model = build_model(default_config)
    (prometheus_yml, _rules) = model.service("prometheus").files
    assert "job_name: event-api" in prometheus_yml["content"]
    assert "job_name: registry\n" not in prometheus_yml["content"]  # exposes no metrics
    assert "job_name: registry-volume-usage\n" in prometheus_yml["content"]  # its sidecar
    # Postgres's metrics come from its exporter sidecar, with a login of monitoring's own.
    assert "job_name: postgres" in prometheus_yml["content"]
    volume_usage, exporter = model.service("postgres").sidecars
    assert volume_usage["volumes"] == ["data"] and volume_usage["metrics"]["port"] == 9110
    assert exporter["secrets"] == ["postgres-monitoring"]
    assert exporter["env"]["DATA_SOURCE_USER"] == "monitoring"
    assert model.service("postgres").env["POSTGRES_MONITORING_USERS"] == "monitoring"
    (nginx,) = model.service("gateway").files
    assert "location /v1/ {" in nginx["content"] and "http://event-api:8080" in nginx["content"]
    assert "location / {" in nginx["content"]
    assert "/airflow/" not in nginx["content"]  # airflow is off by default


def test_only_secrets_some_service_mounts_are_declared(default_config):
    model = build_model(default_config)
    mounted = {s for service in model.services for s in service.secrets}
    assert set(model.secrets) == mounted
    assert "airflow-fernet-key" not in model.secrets


def test_a_broken_module_template_names_file_and_line(tmp_path: Path, monkeypatch):
    from heliostat import catalog

    bundles = tmp_path / "bundles" / "core"
    bundles.mkdir(parents=True)
    (bundles / "module.yaml").write_text(
        "module: core\ndescription: test\nalways_enabled: true\nservices:\n"
        "  broken:\n    image: x\n    kind: stateless\n    replicas: \"{{ config.nope }}\"\n")
    monkeypatch.setattr(catalog, "data_root", lambda: tmp_path)
    (tmp_path / "profiles").symlink_to(catalog.Path(__file__).resolve().parents[3] / "profiles")
    catalog.load_modules.cache_clear()
    from heliostat import schema

    schema.platform_schema.cache_clear()
    schema._validator.cache_clear()
    try:
        config = load_config(None)
        with pytest.raises(CatalogError, match=r"bundles/core/module.yaml:5: services.broken: .*"
                                               r"has no attribute 'nope'"):
            build_model(config)
    finally:
        catalog.load_modules.cache_clear()
        schema.platform_schema.cache_clear()
        schema._validator.cache_clear()


def test_pinned_images_keep_their_tag_and_run_the_digest(example_config):
    from heliostat.model import pin_images

    model = build_model(example_config("kubernetes"))
    worker = model.service("airflow-worker")
    digest = "sha256:" + "a" * 64
    pinned = pin_images(model, {worker.image_ref: digest})
    assert pinned.service("airflow-worker").image_ref == f"{worker.image_ref}@{digest}"
    # every service on the same image is pinned; the others and the sidecars stay as they are
    for before, after in zip(model.services, pinned.services, strict=True):
        assert after.image_ref == (f"{before.image_ref}@{digest}"
                                   if before.image_ref == worker.image_ref else before.image_ref)
        for sc_before, sc_after in zip(before.sidecars, after.sidecars, strict=True):
            assert sc_after["image_ref"] == (f"{sc_before['image_ref']}@{digest}"
                                             if sc_before["image_ref"] == worker.image_ref
                                             else sc_before["image_ref"])
    assert pin_images(model, {}) is model
