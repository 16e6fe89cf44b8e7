"""The platform's alert rules, as heliostat renders them for the default platform, under
`promtool test rules` (the platform's own Prometheus image carries promtool): each
alert fires on what it names, after its `for`, and not on what it does not."""

from __future__ import annotations

import shutil
from pathlib import Path

import docker
import docker.errors
import pytest

from heliostat.config import load_config
from heliostat.model import build_model

IMAGE = "heliostat/prometheus:0.1.0"
TESTS = Path(__file__).with_name("rules_tests.yml")


def rendered_rules() -> str:
    prometheus = build_model(load_config(None)).service("prometheus")
    return next(f["content"] for f in prometheus.files if f["path"].endswith("/rules.yml"))


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
    (tmp_path / "rules.yml").write_text(rendered_rules())
    shutil.copy(TESTS, tmp_path / "rules_tests.yml")
    for path in (tmp_path, *tmp_path.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the image's user reads them
    return tmp_path


def test_the_rules_are_valid_and_each_alert_is_tested(docker_client, rules_folder):
    status, output = promtool(docker_client, rules_folder, "check", "rules", "rules.yml")
    assert status == 0, output
    tested = TESTS.read_text()
    alerts = [line.split("alert:", 1)[1].strip() for line in rendered_rules().splitlines()
              if line.strip().startswith("- alert:")]
    assert alerts and all(f"alertname: {a}" in tested for a in alerts), alerts


def test_each_alert_fires_on_what_it_names_and_only_after_its_for(docker_client,
                                                                    rules_folder):
    status, output = promtool(docker_client, rules_folder, "test", "rules",
                              "rules_tests.yml")
    assert status == 0, output
    assert "SUCCESS" in output, output
