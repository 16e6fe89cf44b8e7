"""Hosts heliostat cannot run on: no python3, or one older than 3.10. One line each, saying
what to install, before anything is uploaded."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.ssh.airgap import AirgappedHosts
from tests.e2e.ssh.conftest import SshPlatform, new_workstation
from tests.infra.compose_platforms import free_port, unique_platform_name

BARE_HOST = "airgapped-bare"
# Answers the transport's probe as a CPython 3.8 would.
OLD_PYTHON = """#!/bin/sh
echo '{"python": [3, 8, 18], "home": "/root", "user": "root", "engine": "x", "socket": null,
"socket_exists": false, "socket_usable": false, "time": 0, "home_free": 0}'
"""


def test_no_python3_then_an_old_one(airgap: AirgappedHosts, ssh_zipapp: Path, tmp_path: Path):
    host = airgap.add_target(BARE_HOST, Path("/var/run/docker.sock"))
    platform = SshPlatform(unique_platform_name(), tmp_path, free_port(), airgap)
    station = new_workstation(tmp_path, ssh_zipapp)
    config = platform.config(airgap.jump_port, target=BARE_HOST)

    assert host.exec_run(["mv", "/usr/bin/python3", "/usr/bin/hidden-python3"]).exit_code == 0
    missing = station.run("status", "-f", str(config))
    assert missing.returncode == 1
    assert missing.stderr.splitlines()[-1] == (
        "error: root@airgapped-bare:22 has no python3: install CPython 3.10 or newer there "
        "(Debian/Ubuntu: apt-get install python3); heliostat needs nothing else")

    fake = airgap.share / f"{platform.name}-python3"  # the share is at the same path there
    fake.write_text(OLD_PYTHON)
    installed = host.exec_run(["install", "-m", "755", str(fake), "/usr/local/bin/python3"])
    assert installed.exit_code == 0, installed.output
    old = station.run("status", "-f", str(config))
    assert old.returncode == 1
    assert old.stderr.splitlines()[-1] == (
        "error: python3 on root@airgapped-bare:22 is 3.8.18; heliostat needs CPython 3.10 or "
        "newer there")
    assert "Traceback" not in missing.stderr + old.stderr
    staged = host.exec_run(["sh", "-c", "ls /root/.cache/heliostat/staging 2>/dev/null; true"])
    assert staged.output == b""  # nothing was uploaded
