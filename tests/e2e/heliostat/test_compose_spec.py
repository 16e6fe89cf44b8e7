"""The Compose profile's output, read by the real `docker compose` (v2, built by the test
bed): accepted as it is, with no variable warnings, and meaning what we rendered."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from heliostat.config import load_config
from heliostat.model import build_model
from heliostat.render import render_manifests, write_manifests

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = [None, ROOT / "examples" / "compose.yaml", ROOT / "examples" / "kubernetes.yaml"]


@pytest.fixture(scope="module")
def docker_compose() -> list[str]:
    docker = shutil.which("docker")
    probe = subprocess.run([docker or "docker", "compose", "version"], capture_output=True)
    if docker is None or probe.returncode != 0:
        pytest.fail("`docker compose` is missing: run `make testbed`")
    return [docker, "compose"]


@pytest.mark.parametrize("config_file", CONFIGS, ids=["default", "compose", "kubernetes"])
def test_docker_compose_reads_the_rendered_file(config_file, docker_compose, tmp_path: Path):
    model = build_model(load_config(config_file).with_profile("compose"))
    write_manifests(render_manifests(model), tmp_path)
    result = subprocess.run([*docker_compose, "-f", str(tmp_path / "compose.yaml"), "config",
                             "--format", "json"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "variable is not set" not in result.stderr  # a `$` Compose would have eaten
    project = json.loads(result.stdout)
    expected = {
        f"{s.name}{replica}{suffix}" for s in model.services
        for replica in ([f"-{i}" for i in range(s.replicas)] if s.kind == "stateful" else [""])
        for suffix in ["", *(f"-{c['name']}" for c in s.sidecars)]}
    assert set(project["services"]) == expected
    # Compose interpolates nothing: every `$` in the file is a literal one...
    variables = subprocess.run([*docker_compose, "-f", str(tmp_path / "compose.yaml"), "config",
                                "--variables"], capture_output=True, text=True, cwd=tmp_path)
    assert variables.returncode == 0
    assert variables.stdout.split() == ["NAME", "REQUIRED", "DEFAULT", "VALUE", "ALTERNATE",
                                        "VALUE"]  # the table's header, and no variable
    # ...so the container gets the file heliostat rendered (`config` prints `$` as `$$`).
    nginx = project["configs"]["gateway-nginx.conf"]["content"]
    assert nginx == model.service("gateway").files[0]["content"].replace("$", "$$")
    assert "proxy_pass $$upstream_1;" in nginx
    api = project["services"]["event-api"]
    assert api["deploy"]["replicas"] == model.service("event-api").replicas
