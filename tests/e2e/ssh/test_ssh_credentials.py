"""Logging in over SSH: key files, passphrase-protected keys, a real ssh-agent, ~/.ssh/config
Host entries; a refused key or an unusable host is one line saying what to do."""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.ssh.airgap import PASSPHRASE, platform_yaml
from tests.e2e.ssh.conftest import Installed, Workstation
from tests.infra.run_dir import RunDir
from tests.infra.ssh_hosts import known_hosts_line


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: ")
    return last


def status(installed: Installed, station: Workstation, **config: object):
    path = installed.platform.config(installed.platform.airgap.jump_port, **config)
    return station.run("status", "-f", str(path))


def test_a_passphrase_protected_key_with_its_passphrase_file(installed: Installed,
                                                             workstation: Workstation):
    keys = installed.platform.airgap.keys
    result = status(installed, workstation, file="passphrase.yaml", key_file=keys.passphrase,
                    extra=f", key_passphrase_file: '{keys.passphrase_file}'")
    assert result.returncode == 0, result.stderr


def test_a_passphrase_protected_key_without_a_terminal_says_how(installed: Installed,
                                                               workstation: Workstation):
    keys = installed.platform.airgap.keys
    error = one_line_error(status(installed, workstation, file="no-passphrase.yaml",
                                  key_file=keys.passphrase))
    assert "protected by a passphrase" in error and "key_passphrase_file" in error


def test_a_wrong_passphrase_is_named_and_not_printed(installed: Installed,
                                                     workstation: Workstation, tmp_path: Path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not " + PASSPHRASE)
    keys = installed.platform.airgap.keys
    result = status(installed, workstation, file="wrong-passphrase.yaml",
                    key_file=keys.passphrase, extra=f", key_passphrase_file: '{wrong}'")
    assert "wrong passphrase" in one_line_error(result)
    assert PASSPHRASE not in result.stderr + result.stdout


def test_a_key_the_host_does_not_authorize_is_refused(installed: Installed,
                                                      workstation: Workstation):
    keys = installed.platform.airgap.keys
    error = one_line_error(status(installed, workstation, file="refused.yaml",
                                  key_file=keys.refused))
    assert "refused every key offered" in error and "authorized_keys" in error


@pytest.fixture
def ssh_agent(testbed_run: RunDir, tmp_path: Path) -> Iterator[str]:
    """A real ssh-agent holding only the agent key; yields its socket."""
    socket = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket)], stdout=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
    testbed_run.record_process(f"ssh-agent-{agent.pid}", agent.pid)
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert agent.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.05)
        yield str(socket)
    finally:
        agent.terminate()
        agent.wait(10)


def test_the_agents_key_logs_in_and_no_key_at_all_is_explained(
        installed: Installed, workstation: Workstation, ssh_agent: str):
    keys = installed.platform.airgap.keys
    env = {**os.environ, "SSH_AUTH_SOCK": ssh_agent}
    subprocess.run(["ssh-add", "-q", str(keys.agent_only)], env=env, check=True,
                   capture_output=True)
    # Nothing in ~/.ssh and no key_file: without the agent there is no key to offer.
    without = status(installed, workstation, file="agent.yaml", key_file="")
    assert "no SSH key to log in" in one_line_error(without)
    workstation.agent_socket = ssh_agent
    with_agent = status(installed, workstation, file="agent.yaml", key_file="")
    assert with_agent.returncode == 0, with_agent.stderr


def test_ssh_config_host_entries_and_their_proxy_jump(installed: Installed,
                                                      workstation: Workstation):
    airgap, platform = installed.platform.airgap, installed.platform
    ssh = workstation.home / ".ssh"
    (ssh / "config").write_text(textwrap.dedent(f"""\
        Host db-host
          HostName airgapped
          User root
          ProxyJump bastion
          IdentityFile {airgap.keys.plain}
        Host bastion
          HostName 127.0.0.1
          Port {airgap.jump_port}
          User root
          IdentityFile {airgap.keys.plain}
        """))
    airgap.known_hosts(ssh / "known_hosts", airgap.jump_port)  # the default file
    config = platform_yaml(platform.directory / "ssh-config.yaml", platform.name, airgap.share,
                           platform.port, "{}", host="ssh://db-host")
    result = workstation.run("status", "-f", str(config))
    assert result.returncode == 0, result.stderr
    assert "connecting to root@airgapped:22 through the jump host" in result.stderr


def test_a_host_without_a_usable_docker_socket_is_refused(installed: Installed,
                                                          workstation: Workstation):
    airgap, platform = installed.platform.airgap, installed.platform
    known = platform.directory / "known_hosts-jump-only"
    known.write_text(known_hosts_line("127.0.0.1", airgap.jump_port, airgap.host_keys["plain"]))
    config = platform_yaml(
        platform.directory / "jump-as-target.yaml", platform.name, airgap.share, platform.port,
        f"{{key_file: '{airgap.keys.plain}', known_hosts: '{known}'}}",
        host=f"ssh://root@127.0.0.1:{airgap.jump_port}")
    error = one_line_error(workstation.run("status", "-f", str(config)))
    assert "has no Docker socket at /var/run/docker.sock" in error
