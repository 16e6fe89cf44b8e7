"""The platform's alert rules, as heliostat renders them with every module enabled,
under `promtool test rules` (the platform's own Prometheus image carries promtool): each
alert fires on what it names, after its `for`, and not on what it does not."""

from __future__ import annotations

import re
from pathlib import Path

import docker
import docker.errors
import pytest
import yaml

from heliostat.catalog import load_modules
from heliostat.config import config_from_document
from heliostat.model import PlatformModel, build_model, scrape_jobs
from heliostat.yaml_source import load_yaml_text

IMAGE = "heliostat/prometheus:0.1.0"
TESTS = Path(__file__).with_name("rules_tests.yml")
EVERY_MODULE = """\
apiVersion: heliostat/v1
name: heliostat
profile: compose
modules: {airflow: {enabled: true}}
"""


def every_module_platform() -> PlatformModel:
    config = config_from_document(load_yaml_text(EVERY_MODULE, "platform.yaml"))
    assert config.enabled_modules() == [m.name for m in load_modules()]
    return build_model(config)


def prometheus_file(name: str) -> str:
    prometheus = every_module_platform().service("prometheus")
    return next(f["content"] for f in prometheus.files if f["path"].endswith(f"/{name}"))


def scraped_jobs() -> dict[str, int]:
    """Each job Prometheus scrapes, with the replicas its service runs."""
    model = every_module_platform()
    jobs = [c["job_name"] for c in yaml.safe_load(prometheus_file("prometheus.yml"))[
        "scrape_configs"]]
    replicas = {j["job"]: j["replicas"] for j in scrape_jobs(model.services)}
    return {job: replicas[job] for job in jobs}


def with_every_other_service_up(tests: dict) -> dict:
    """`tests` with `up` = 1 on every replica of each job a test does not mention, so
    that ServiceDown names only what the test took down."""
    for test in tests["tests"]:
        mentioned = set(re.findall(r'up\{job="([^"]+)"', str(test["input_series"])))
        for job, replicas in scraped_jobs().items():
            if job not in mentioned:
                test["input_series"] += [
                    {"series": f'up{{job="{job}", instance="{job}-{i}"}}', "values": "1x60"}
                    for i in range(replicas)]
    return tests


def promtool(client: docker.DockerClient, folder: Path, *args: str) -> tuple[int, str]:
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {IMAGE} is missing: run `make images`", pytrace=False)
    container = client.containers.run(IMAGE, ["promtool", *args], detach=True,
                                      entrypoint=[], working_dir="/rules",
                                      volumes={str(folder): {"bind": "/rules", "mode": "ro"}})
    try:
        status = container.wait(timeout=120)["StatusCode"]
        return status, container.logs().decode()
    finally:
        container.remove(force=True)


@pytest.fixture
def rules_folder(tmp_path: Path) -> Path:
    (tmp_path / "rules.yml").write_text(prometheus_file("rules.yml"))
    tests = with_every_other_service_up(yaml.safe_load(TESTS.read_text()))
    (tmp_path / "rules_tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    for path in (tmp_path, *tmp_path.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the image's user reads them
    return tmp_path


def test_the_rules_are_valid_and_each_alert_is_tested(docker_client, rules_folder):
    status, output = promtool(docker_client, rules_folder, "check", "rules", "rules.yml")
    assert status == 0, output
    tested = TESTS.read_text()
    rules = [rule for group in yaml.safe_load(prometheus_file("rules.yml"))["groups"]
             for rule in group["rules"]]
    alerts = {rule["alert"] for rule in rules}
    assert alerts and all(f"alertname: {a}" in tested for a in alerts), alerts


def test_every_scraped_service_has_its_service_down_rule():
    rules = [rule for group in yaml.safe_load(prometheus_file("rules.yml"))["groups"]
             for rule in group["rules"] if rule["alert"] == "ServiceDown"]
    assert {rule["labels"]["job"]: rule["expr"] for rule in rules} == {
        job: f'(count(up{{job="{job}"}} == 1) or vector(0)) < {replicas}'
        for job, replicas in scraped_jobs().items()}
    assert scraped_jobs()["event-api"] == 2  # replicas counted, not only presence
    assert scraped_jobs()["kafka-volume-usage"] == 1  # and a sidecar's own metrics


def test_each_alert_fires_on_what_it_names_and_only_after_its_for(docker_client,
                                                                    rules_folder):
    status, output = promtool(docker_client, rules_folder, "test", "rules",
                              "rules_tests.yml")
    assert status == 0, output
    assert "SUCCESS" in output, output
