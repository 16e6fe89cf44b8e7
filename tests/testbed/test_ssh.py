"""SSH round trips with strict host-key checking: SFTP upload plus a command, refusal of wrong
and unknown host keys, the Docker host behind SSH, and a session cut mid-upload."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import docker
import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.infra.ssh_hosts import SshEndpoint, SshProxy, known_hosts_line


def connect(target: SshEndpoint | SshProxy, known_hosts: Path | None = None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts or target.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        target.host,
        port=target.port,
        username=target.user,
        key_filename=str(target.key_path),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    return client


def run(client: paramiko.SSHClient, command: str) -> str:
    _, stdout, stderr = client.exec_command(command, timeout=60)
    status = stdout.channel.recv_exit_status()
    assert status == 0, f"{command!r} exited {status}: {stderr.read().decode()}"
    return stdout.read().decode()


def random_file(path: Path, megabytes: int) -> Path:
    with path.open("wb") as out:
        for _ in range(megabytes):
            out.write(os.urandom(1 << 20))
    return path


def test_sftp_upload_then_command(ssh_host: SshEndpoint, tmp_path: Path) -> None:
    local = random_file(tmp_path / "payload.bin", 2)
    with connect(ssh_host) as client, client.open_sftp() as sftp:
        sftp.put(str(local), "/tmp/payload.bin")
        remote_digest = run(client, "sha256sum /tmp/payload.bin").split()[0]
    assert remote_digest == hashlib.sha256(local.read_bytes()).hexdigest()


def test_openssh_client_with_strict_checking(ssh_host: SshEndpoint) -> None:
    result = subprocess.run(
        ["ssh", "-p", str(ssh_host.port), "-i", str(ssh_host.key_path),
         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={ssh_host.known_hosts}",
         "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
         f"{ssh_host.user}@{ssh_host.host}", "hostname"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert (result.returncode, result.stdout.strip()) == (0, "ssh-plain"), result.stderr


def test_wrong_host_key_is_refused(ssh_host: SshEndpoint, tmp_path: Path) -> None:
    impostor = Ed25519PrivateKey.generate().public_key()
    blob = impostor.public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).split()[1]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(known_hosts_line(ssh_host.host, ssh_host.port, f"ssh-ed25519 {blob.decode()}"))
    with pytest.raises(paramiko.BadHostKeyException):
        connect(ssh_host, known_hosts=wrong)

    result = subprocess.run(
        ["ssh", "-p", str(ssh_host.port), "-i", str(ssh_host.key_path),
         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={wrong}",
         "-o", "BatchMode=yes", f"{ssh_host.user}@{ssh_host.host}", "true"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in result.stderr


def test_unknown_host_is_refused(ssh_host: SshEndpoint, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        connect(ssh_host, known_hosts=empty)


def test_docker_host_reachable_over_ssh(
    ssh_docker_host: SshEndpoint, docker_client: docker.DockerClient
) -> None:
    with connect(ssh_docker_host) as client:
        engine_id = run(client, "docker -H unix:///var/run/docker.sock info --format '{{.ID}}'")
        python = run(client, "python3 -c 'import sys; print(sys.version_info[0])'")
    assert engine_id.strip() == docker_client.info()["ID"]
    assert python.strip() == "3"


def test_session_cut_mid_upload(ssh_proxy: SshProxy, ssh_host: SshEndpoint, tmp_path: Path) -> None:
    local = random_file(tmp_path / "big.bin", 32)
    total = local.stat().st_size

    def cut_after_4_megabytes(sent: int, _total: int) -> None:
        if sent >= 4 << 20:
            ssh_proxy.cut()

    # Closing the SFTP channel on the cut session may raise too, so the expected error
    # spans the whole SFTP session; the size check below proves the upload was cut.
    with (
        connect(ssh_proxy) as client,
        pytest.raises((EOFError, OSError, paramiko.SSHException)),
        client.open_sftp() as sftp,
    ):
        sftp.put(str(local), "/tmp/big.bin", callback=cut_after_4_megabytes)

    # The host kept only part of the file; the proxy still takes new sessions.
    with connect(ssh_proxy) as client:
        remote_size = int(run(client, "stat -c %s /tmp/big.bin || echo 0").split()[0])
    assert 0 < remote_size < total
    assert ssh_proxy.proxy.connections_made == 2
