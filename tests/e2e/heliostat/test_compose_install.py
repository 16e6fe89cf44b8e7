"""`heliostat install`, a no-op re-apply, `diff`, `status` and `history` on the real engine,
with a small real platform: the gateway and the registry of the core module."""

import json
import os
import re
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import docker

from tests.infra.compose_platforms import (
    PLATFORM_LABEL,
    REPOSITORY,
    PlatformUnderTest,
    heliostat_env,
)


def containers(client: docker.DockerClient, platform: PlatformUnderTest) -> dict[str, str]:
    """Container name -> id, of the platform's containers."""
    found = client.containers.list(all=True, filters={"label": f"{PLATFORM_LABEL}={platform.name}"})
    return {c.name: c.id for c in found}


def test_install_then_reapply_touches_nothing(test_platform: PlatformUnderTest,
                                              compose_engine: docker.DockerClient,
                                              tmp_path: Path):
    platform = test_platform
    before = platform.run("diff")
    assert before.returncode == 1, before.stderr
    assert "+ create  gateway-1" in before.stdout and "+ create  registry-0" in before.stdout

    installed = platform.run("install")
    assert installed.returncode == 0, installed.stderr
    assert f"platform {platform.name}: revision 1 deployed" in installed.stdout
    assert "wave 1/1: gateway" in installed.stderr and "wave 1/1: registry" in installed.stderr
    with urllib.request.urlopen(f"http://127.0.0.1:{platform.port}/healthz", timeout=5) as answer:
        assert answer.status == 200
    ids = containers(compose_engine, platform)
    assert set(ids) == {f"{platform.name}-gateway-1", f"{platform.name}-registry-0"}
    registry = compose_engine.containers.get(f"{platform.name}-registry-0")
    labels = registry.labels
    assert labels["io.heliostat.revision"] == "1" and labels["io.heliostat.key"] == "registry-0"
    assert labels["io.heliostat.service"] == "registry"
    assert len(labels["io.heliostat.spec-hash"]) == 64

    # The generated secret: 0600 in a 0700 directory, readable by the image's own user only,
    # and never in the ledger or the output.
    secrets = platform.ledger / "secrets"
    value = (secrets / "registry-http-secret").read_text()
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(secrets / "registry-http-secret").st_mode) == 0o600
    mounted = registry.exec_run(["cat", "/run/secrets/registry-http-secret"])
    assert mounted.exit_code == 0 and mounted.output.decode() == value
    assert registry.exec_run(["id", "-un"]).output.decode().strip() == "docker-registry"
    revision = (platform.ledger / "revision-000001.json").read_text()
    assert value not in revision and value not in installed.stdout + installed.stderr
    assert json.loads(revision)["secrets"]["registry-http-secret"].startswith("sha256:")

    shown = platform.run("status", "--show-secret", "registry-http-secret")
    assert shown.returncode == 0 and shown.stdout == value + "\n"  # on request only
    unknown = platform.run("status", "--show-secret", "nope")
    assert unknown.returncode == 2 and "has no secret 'nope'" in unknown.stderr

    again = platform.run("install")
    assert again.returncode == 2 and "already installed (revision 1)" in again.stderr

    noop = platform.run("upgrade")  # how fast: bench/compose
    assert noop.returncode == 0, noop.stderr
    assert "nothing to do" in noop.stdout
    assert containers(compose_engine, platform) == ids  # same containers, none recreated
    assert sorted(p.name for p in platform.ledger.glob("revision-*.json")) == [
        "revision-000001.json"]

    unchanged = platform.run("diff")
    assert unchanged.returncode == 0 and unchanged.stdout == "No changes: 2 objects unchanged.\n"

    status = platform.run("status", "--output", "json")
    assert status.returncode == 0, status.stderr
    rows = {row["service"]: row for row in json.loads(status.stdout)["services"]}
    assert rows["gateway"]["ready"] == rows["gateway"]["desired"] == 1
    assert rows["registry"]["health"] == "healthy" and rows["registry"]["revisions"] == [1]
    assert rows["registry"]["image"] == "heliostat/registry:0.1.0"
    assert rows["registry"]["image_id"].startswith("sha256:")
    assert isinstance(rows["registry"]["age_seconds"], int)
    text = platform.run("status").stdout
    assert "registry  1/1    healthy" in text
    assert re.search(r"^registry .* \d+[smh]$", text, re.MULTILINE), text

    # `--watch` shows it again every 2 seconds until Ctrl-C, a JSON line each time.
    watch = platform.start("status", "--watch", "--output", "json")
    first, second = (json.loads(watch.stdout.readline()) for _ in range(2))
    watch.send_signal(signal.SIGINT)
    _, watch_errors = watch.communicate(timeout=10)
    assert watch.returncode == 0 and "Traceback" not in watch_errors
    ages = [{r["service"]: r["age_seconds"] for r in shown["services"]}["registry"]
            for shown in (first, second)]
    assert ages[1] >= ages[0] + 1, ages

    # What `render` writes is, byte for byte, what the install applied and recorded
    # (render knows the state directory from platform.yaml; install took --state-dir).
    rendered, same = tmp_path / "rendered", tmp_path / "same-state-dir.yaml"
    same.write_text(platform.config.read_text()
                    + f"target: {{compose: {{state_dir: {platform.state_dir}}}}}\n")
    written = subprocess.run([sys.executable, "-m", "heliostat", "render", "-f",
                              str(same), "--output-dir", str(rendered)],
                             capture_output=True, text=True, cwd=REPOSITORY,
                             env=heliostat_env(), timeout=60)
    assert written.returncode == 0, written.stderr
    applied = json.loads((platform.ledger / "revision-000001.json").read_text())["manifests"]
    assert applied and {name: (rendered / name).read_text() for name in applied} == applied

    history = platform.run("history", "--output", "json")
    assert [(r["revision"], r["status"], r["description"])
            for r in json.loads(history.stdout)] == [(1, "deployed", "install")]


def test_diff_reports_a_change_and_a_bad_file(test_platform: PlatformUnderTest):
    platform = test_platform
    assert platform.run("install").returncode == 0
    moved = platform.write_config("moved.yaml", port=platform.other_port)
    changed = platform.run("diff", config=moved)
    assert changed.returncode == 1
    assert "-/+ replace gateway-1  (ports[0].published)" in changed.stdout
    assert "1 unchanged" in changed.stdout
    as_json = json.loads(platform.run("diff", "--output", "json", config=moved).stdout)
    assert as_json["changes"] and as_json["summary"]["replace"] == 1
    broken = platform.directory / "broken.yaml"
    broken.write_text("apiVersion: heliostat/v1\nname: x\nmodules: {clickstream: {evnt: 1}}\n")
    invalid = platform.run("diff", config=broken)
    assert invalid.returncode == 2 and "Traceback" not in invalid.stderr
    assert "broken.yaml:3" in invalid.stderr


def test_upgrade_install_installs_what_is_missing_then_upgrades(test_platform: PlatformUnderTest):
    platform = test_platform
    refused = platform.run("upgrade")
    assert refused.returncode == 2 and "is not installed" in refused.stderr

    installed = platform.run("upgrade", "--install", "--output", "json")
    assert installed.returncode == 0, installed.stderr
    outcome = json.loads(installed.stdout)
    assert (outcome["status"], outcome["revision"]) == ("deployed", 1)
    assert outcome["access"]["logins"] == {}  # no module with a login runs here

    again = platform.run("upgrade", "--install")
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
    history = json.loads(platform.run("history", "--output", "json").stdout)
    assert [(r["revision"], r["description"]) for r in history] == [(1, "install")]
