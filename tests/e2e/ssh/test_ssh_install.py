"""Every verb of the Compose target over SSH, through a jump host, onto a Docker host whose
only network is the SSH connection: installed from the bundle alone."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import urllib.error
import urllib.request

from tests.e2e.ssh.airgap import platform_yaml
from tests.e2e.ssh.conftest import Installed
from tests.infra.ssh_hosts import known_hosts_line


def answers(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_target_has_no_route_out(installed: Installed):
    target = installed.platform.airgap.target
    target.reload()
    networks = target.attrs["NetworkSettings"]["Networks"]
    assert list(networks) == [installed.platform.airgap.network.name]
    installed.platform.airgap.network.reload()
    assert installed.platform.airgap.network.attrs["Internal"] is True
    reach_out = target.exec_run(["python3", "-c", "import socket; socket.create_connection("
                                 "('1.1.1.1', 80), timeout=3)"])
    assert reach_out.exit_code != 0, reach_out.output


def test_install_through_the_jump_host_from_the_bundle(installed: Installed):
    result = installed.result
    assert result.returncode == 0, result.stderr
    assert "through the jump host" in result.stderr
    assert "sha256 verified on the host" in result.stderr
    # The host's run: its progress came back as it went, then its result.
    assert "images: " in result.stderr and "wave 1/1" in result.stderr
    assert f"platform {installed.platform.name}: revision 1 deployed" in result.stdout
    revision = json.loads((installed.platform.ledger / "revision-000001.json").read_text())
    assert revision["bundle_digest"].startswith("sha256:")
    assert set(revision["images"]) == {"heliostat/gateway:0.1.0", "heliostat/registry:0.1.0"}
    assert answers(installed.platform.port) < 500


def test_read_only_verbs_give_the_hosts_output_and_exit_code(installed: Installed):
    station, config = installed.workstation, installed.platform.config(
        installed.platform.airgap.jump_port)
    status = station.run("status", "-f", str(config), "--output", "json")
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)  # JSON passes through unchanged
    assert summary["platform"] == installed.platform.name
    history = station.run("history", "-f", str(config), "--output", "json")
    assert history.returncode == 0, history.stderr
    assert json.loads(history.stdout)[-1]["status"] == "deployed"
    diff = station.run("diff", "-f", str(config))
    assert diff.returncode == 0, diff.stdout + diff.stderr
    doctor = station.run("doctor", "-f", str(config), "--output", "json")
    report = json.loads(doctor.stdout)
    assert doctor.returncode in (0, 1) and report["platform"] == installed.platform.name
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["python"]["status"] == "ok" and "python3 3." in checks["python"]["finding"]
    assert checks["engine"]["status"] == "ok", checks["engine"]
    # Both clocks are this machine's: what is left is the measurement's uncertainty.
    assert checks["workstation-clock"]["status"] == "ok", checks["workstation-clock"]
    assert "the Docker host's clock is" in checks["workstation-clock"]["finding"]


def test_a_change_found_by_diff_is_exit_1_as_locally(installed: Installed):
    platform = installed.platform
    moved = platform.config(platform.airgap.jump_port, "moved.yaml", port=platform.port + 1)
    diff = installed.workstation.run("diff", "-f", str(moved))
    assert diff.returncode == 1, diff.stderr
    assert "gateway" in diff.stdout


def test_a_no_op_upgrade_uploads_nothing(installed: Installed):
    config = installed.platform.config(installed.platform.airgap.jump_port)
    result = installed.workstation.run("upgrade", "-f", str(config))
    assert result.returncode == 0, result.stderr
    assert "heliostat.pyz is on the host already" in result.stderr
    assert "uploaded" not in result.stderr
    assert "nothing to do" in result.stdout


def test_the_zipapp_ships_itself_and_reads_platform_yaml_from_stdin(installed: Installed):
    station = installed.workstation
    config = installed.platform.config(installed.platform.airgap.jump_port)
    env = {k: v for k, v in station.env().items() if k not in ("HELIOSTAT_ZIPAPP", "PYTHONPATH")}
    result = subprocess.run([sys.executable, str(station.zipapp), "status", "-f", "-"],
                            input=config.read_text(), capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    digest = hashlib.sha256(station.zipapp.read_bytes()).hexdigest()
    assert f"heliostat.pyz is on the host already (sha256 {digest[:16]}" in result.stderr
    assert f"platform {installed.platform.name}: revision" in result.stdout


def test_two_jump_hosts_in_a_row(installed: Installed):
    platform, airgap = installed.platform, installed.platform.airgap
    # The second hop is the jump host again, by its name on the internal network.
    second = airgap.jump.name
    known = airgap.known_hosts(platform.directory / "known_hosts-two-hops", airgap.jump_port)
    with known.open("a") as extra:
        extra.write(known_hosts_line(second, 22, airgap.host_keys["plain"]))
    config = platform_yaml(
        platform.directory / "two-hops.yaml", platform.name, airgap.share, platform.port,
        f"{{key_file: '{airgap.keys.plain}', known_hosts: '{known}', jump_hosts: "
        f"['root@127.0.0.1:{airgap.jump_port}', 'root@{second}:22']}}")
    result = installed.workstation.run("history", "-f", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("through the jump host") == 2
