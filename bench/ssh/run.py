"""The ssh transport against its references, same host, same file, same run. Prints JSON.

- upload: `heliostat` staging a file over loopback SSH (SFTP, then the sha256 check on the
  host) against `scp` of the same file to the same sshd (its default cipher, and the
  AES-GCM one heliostat negotiates); aim: at least 0.8x scp's throughput
- no-op upgrade: `heliostat upgrade` of an installed platform over SSH, end to end
  (connect, find the zipapp and platform.yaml staged already, plan, nothing to do); aim: 3 s

The SSH host is the test bed's sshd image with the engine's socket mounted, published on a
loopback port.

    PYTHONPATH=installer:. <venv>/bin/python bench/ssh/run.py [--size-mb 512] [--runs 3]

Needs `make testbed`, `make images` and `make zipapp` (dist/heliostat.pyz is what is shipped).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

from heliostat.file_digest import sha256_file
from heliostat.transports.address import SshAddress
from heliostat.transports.connection import Credentials, HostKeyPolicy
from heliostat.transports.ssh_run import ShippedRun, SshTarget
from tests.e2e.ssh.airgap import platform_yaml
from tests.infra import docker_engine
from tests.infra.compose_platforms import free_port, remove_platform
from tests.infra.settings import ssh_keys
from tests.infra.ssh_hosts import known_hosts_line, wait_for_banner

ROOT = Path(__file__).resolve().parents[2]
AIM_RATIO, AIM_NOOP_SECONDS = 0.8, 3.0
GCM = "aes128-gcm@openssh.com"  # the cipher heliostat's transport prefers


class DockerHostOverSsh:
    """One sshd container with the engine's socket and `share` at the same path inside."""

    def __init__(self, client: docker.DockerClient, work: Path) -> None:
        keys = ssh_keys()
        etc = work / "etc"
        etc.mkdir(mode=0o755)
        shutil.copy2(keys / "hosts" / "docker" / "ssh_host_ed25519_key", etc)
        shutil.copy2(keys / "client" / "authorized_keys", etc)
        self.share = work / "share"
        self.share.mkdir()
        self.key = keys / "client" / "id_ed25519"
        self.container = client.containers.run(
            docker_engine.require_image(client, "SSHD_IMAGE"),
            name=f"heliostat-bench-ssh-{os.getpid()}", detach=True,
            ports={"22/tcp": ("127.0.0.1", None)},
            volumes={str(etc): {"bind": "/etc/ssh/testbed", "mode": "ro"},
                     "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
                     str(self.share): {"bind": str(self.share), "mode": "rw"}})
        self.container.reload()
        self.port = int(self.container.ports["22/tcp"][0]["HostPort"])
        wait_for_banner(self.port)
        host_key = " ".join((keys / "hosts" / "docker" / "ssh_host_ed25519_key.pub")
                            .read_text().split()[:2])
        self.known_hosts = work / "known_hosts"
        self.known_hosts.write_text(known_hosts_line("127.0.0.1", self.port, host_key))

    def target(self) -> SshTarget:
        return SshTarget(SshAddress("127.0.0.1", self.port, "root"),
                         credentials=Credentials(self.key),
                         policy=HostKeyPolicy((self.known_hosts,)))

    def remove(self) -> None:
        self.container.remove(force=True)


def scp_seconds(host: DockerHostOverSsh, file: Path, cipher: str | None = None) -> float:
    """`scp` with its default cipher (chacha20-poly1305 on OpenSSH 9), or `cipher`."""
    started = time.monotonic()
    subprocess.run(["scp", "-q", "-i", str(host.key), "-P", str(host.port),
                    *(["-c", cipher] if cipher else []),
                    "-o", f"UserKnownHostsFile={host.known_hosts}",
                    "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                    str(file), "root@127.0.0.1:/tmp/scp-copy"], check=True)
    seconds = time.monotonic() - started
    host.container.exec_run(["rm", "-f", "/tmp/scp-copy"])
    return seconds


def upload_seconds(host: DockerHostOverSsh, file: Path, digest: str) -> tuple[float, float]:
    """(transfer alone, transfer plus the host's sha256 check), from a clean staging dir;
    the connection is made before the clock starts, as scp's is not (its own is small)."""
    host.container.exec_run(["rm", "-rf", "/root/.cache/heliostat"])
    marks: list[float] = []
    with ShippedRun(host.target(), lambda _line: None) as run:
        from heliostat.transports.upload import stage_file

        started = time.monotonic()
        staged = stage_file(run.transport, run.sftp, file, run.staging, digest,
                            lambda done, total: marks.append(time.monotonic()))
        total = time.monotonic() - started
    assert staged.sent_bytes == file.stat().st_size
    return marks[-1] - started, total


def heliostat(args: list[str], zipapp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HELIOSTAT_ZIPAPP": str(zipapp),
           "PYTHONPATH": str(ROOT / "installer")}
    return subprocess.run([sys.executable, "-m", "heliostat", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--zipapp", type=Path, default=ROOT / "dist" / "heliostat.pyz")
    options = parser.parse_args()
    if not options.zipapp.is_file():
        sys.exit(f"{options.zipapp} is missing: run `make zipapp`")
    client = docker_engine.connect()
    work = Path(tempfile.mkdtemp(prefix="heliostat-bench-ssh-"))
    host = DockerHostOverSsh(client, work)
    name = f"bench-ssh-{os.getpid()}"
    try:
        file = work / "payload.bin"
        with file.open("wb") as out:
            for _ in range(options.size_mb):
                out.write(os.urandom(1 << 20))
        size = file.stat().st_size
        digest = sha256_file(file)
        scp, scp_gcm, transfer, verified = [], [], [], []
        for _ in range(options.runs):  # interleaved, so all see the same machine load
            scp.append(scp_seconds(host, file))
            scp_gcm.append(scp_seconds(host, file, GCM))
            seconds = upload_seconds(host, file, digest)
            transfer.append(seconds[0])
            verified.append(seconds[1])

        config = platform_yaml(
            work / "platform.yaml", name, host.share, free_port(),
            f"{{key_file: '{host.key}', known_hosts: '{host.known_hosts}'}}",
            host=f"ssh://root@127.0.0.1:{host.port}")
        installed = heliostat(["install", "-f", str(config)], options.zipapp)
        if installed.returncode != 0:
            sys.exit(f"install over SSH failed:\n{installed.stderr}")
        noop = []
        for _ in range(options.runs):
            started = time.monotonic()
            result = heliostat(["upgrade", "-f", str(config)], options.zipapp)
            noop.append(time.monotonic() - started)
            assert result.returncode == 0 and "nothing to do" in result.stdout, result.stderr
    finally:
        remove_platform(client, name)
        host.remove()
        shutil.rmtree(work, ignore_errors=True)

    def mb_s(seconds: list[float]) -> float:
        return round(size / statistics.median(seconds) / 1e6, 1)

    print(json.dumps({
        "file_mb": round(size / 1e6, 1),
        "runs": options.runs,
        "upload": {
            "scp_mb_s": mb_s(scp),
            "scp_aes128_gcm_mb_s": mb_s(scp_gcm),
            "heliostat_transfer_mb_s": mb_s(transfer),
            "heliostat_verified_mb_s": mb_s(verified),
            "ratio_transfer_vs_scp": round(mb_s(transfer) / mb_s(scp), 2),
            "ratio_verified_vs_scp": round(mb_s(verified) / mb_s(scp), 2),
            "ratio_transfer_vs_scp_aes128_gcm": round(mb_s(transfer) / mb_s(scp_gcm), 2),
            "aim_ratio": AIM_RATIO,
        },
        "noop_upgrade_over_ssh": {
            "median_s": round(statistics.median(noop), 2),
            "all_s": [round(s, 2) for s in noop],
            "aim_s": AIM_NOOP_SECONDS,
        },
    }, indent=2))


if __name__ == "__main__":
    main()
