"""Cut connections: an upload cut at half resumes where it stopped; an upgrade whose
connection dies stops on the host as a killed local one would, and the next commands over
SSH report and resume it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from heliostat.file_digest import sha256_file
from heliostat.transports.address import SshAddress
from heliostat.transports.connection import Credentials, HostKeyPolicy
from heliostat.transports.remote_run import ConnectionLost
from heliostat.transports.ssh_run import ShippedRun, SshTarget
from heliostat.transports.upload import remote_sha256, stage_file
from tests.e2e.ssh.airgap import AirgappedHosts
from tests.e2e.ssh.conftest import Installed
from tests.infra.compose_platforms import free_port
from tests.infra.tcp_proxy import TcpProxy


def through(airgap: AirgappedHosts, proxy: TcpProxy, directory: Path) -> SshTarget:
    known = airgap.known_hosts(directory / "known_hosts", proxy.port)
    return SshTarget(SshAddress("airgapped", 22, "root"),
                     jumps=(SshAddress("127.0.0.1", proxy.port, "root"),),
                     credentials=Credentials(airgap.keys.plain),
                     policy=HostKeyPolicy((known,)))


def test_an_upload_cut_at_half_resumes_and_verifies(airgap: AirgappedHosts, jump_proxy: TcpProxy,
                                                    ssh_bundle: Path, tmp_path: Path):
    airgap.target.exec_run(["sh", "-c", "rm -f /root/.cache/heliostat/staging/*-"
                                        f"{ssh_bundle.name}*"])
    target = through(airgap, jump_proxy, tmp_path)
    size, digest = ssh_bundle.stat().st_size, sha256_file(ssh_bundle)
    lines: list[str] = []

    def cut_at_half(done: int, total: int) -> None:
        if done >= total // 2 and jump_proxy.connections_made == 1:
            jump_proxy.cut()

    with ShippedRun(target, lines.append) as run, pytest.raises(ConnectionLost) as cut:
        stage_file(run.transport, run.sftp, ssh_bundle, run.staging, digest, cut_at_half)
    assert "run the command again: it resumes where it stopped" in str(cut.value)

    with ShippedRun(target, lines.append) as run:
        staged = run.stage(ssh_bundle, digest)
        assert staged.resumed_from > 0.3 * size, staged
        assert staged.sent_bytes < 0.6 * size, staged
        assert staged.resumed_from + staged.sent_bytes == size
        assert remote_sha256(run.transport, staged.remote_path) == digest
        again = run.stage(ssh_bundle, digest)
        assert again.already_there and again.sent_bytes == 0
    assert any("resuming at" in line for line in lines)


def wait_for_line(process, needle: str, timeout: float = 120) -> list[str]:
    """stderr lines of `process` up to the first holding `needle`."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"no {needle!r} in: {''.join(seen)}")


def test_a_connection_killed_during_upgrade_leaves_it_pending_then_it_converges(
        installed: Installed, jump_proxy: TcpProxy):
    platform, station = installed.platform, installed.workstation
    assert installed.result.returncode == 0, installed.result.stderr
    moved = platform.config(jump_proxy.port, "moved.yaml", port=free_port())
    upgrade = station.start("upgrade", "-f", str(moved))
    wait_for_line(upgrade, "wave 1/1")
    jump_proxy.cut()
    out, err = upgrade.communicate(timeout=60)
    assert upgrade.returncode == 1, out + err
    assert "the SSH connection dropped" in err and "heliostat status" in err

    status = station.run("status", "-f", str(moved))
    assert status.returncode == 0, status.stderr
    assert "was interrupted and is pending" in status.stdout  # nothing on the host runs it
    pending = json.loads(station.run("status", "-f", str(moved), "--output", "json").stdout)
    assert pending["pending"] is not None

    again = station.run("upgrade", "-f", str(moved), "--output", "json")
    assert again.returncode == 0, again.stderr
    outcome = json.loads(again.stdout)
    assert outcome["resumed"] == pending["pending"]["number"]
    assert outcome["status"] in ("deployed", "unchanged")
    after = json.loads(station.run("status", "-f", str(moved), "--output", "json").stdout)
    assert after["pending"] is None

    # Back to where the other tests expect it, by a rollback over SSH.
    back = station.run("rollback", "-f", str(moved))
    assert back.returncode == 0, back.stderr
    diff = station.run("diff", "-f", str(platform.config(platform.airgap.jump_port)))
    assert diff.returncode == 0, diff.stdout + diff.stderr


def test_upgrade_install_then_uninstall_over_ssh(installed: Installed, tmp_path: Path):
    from tests.e2e.ssh.conftest import SshPlatform, new_workstation
    from tests.infra.compose_platforms import unique_platform_name

    airgap = installed.platform.airgap
    other = SshPlatform(unique_platform_name(), tmp_path, free_port(), airgap)
    station = new_workstation(tmp_path, installed.workstation.zipapp)
    config = other.config(airgap.jump_port)
    first = station.run("upgrade", "--install", "-f", str(config))
    assert first.returncode == 0, first.stderr
    assert f"platform {other.name}: revision 1 deployed" in first.stdout
    refused = station.run("uninstall", "-f", str(config))
    assert refused.returncode == 2 and "pass --yes" in refused.stderr
    gone = station.run("uninstall", "-f", str(config), "--yes")
    assert gone.returncode == 0, gone.stderr
    assert f"platform {other.name} uninstalled" in gone.stdout
    assert airgap.client.containers.list(
        all=True, filters={"label": f"io.heliostat.platform={other.name}"}) == []
