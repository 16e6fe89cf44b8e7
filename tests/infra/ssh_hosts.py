"""SSH hosts: containers running Debian's sshd with the provisioned host keys, published on a
free loopback port, plus a known_hosts file that trusts exactly that key at that address.

The "docker" host also has the engine's socket mounted, so it is a Docker host that tests reach
only over SSH. Its containers run on this machine's engine: a bind-mount path given through it
names a path on this machine, not inside the SSH host.
"""

from __future__ import annotations

import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from tests.infra.run_dir import RunDir
from tests.infra.settings import NotProvisioned, require, ssh_keys
from tests.infra.tcp_proxy import TcpProxy

USER = "root"


@dataclass(frozen=True)
class SshEndpoint:
    """Everything a client needs to reach one SSH host with strict host-key checking."""

    host: str
    port: int
    user: str
    key_path: Path
    known_hosts: Path
    host_key: str  # "ssh-ed25519 AAAA..." as in a known_hosts line


def known_hosts_line(host: str, port: int, host_key: str) -> str:
    address = host if port == 22 else f"[{host}]:{port}"
    return f"{address} {host_key}\n"


def endpoint_at(endpoint: SshEndpoint, port: int, known_hosts: Path) -> SshEndpoint:
    """The same host's identity reached through another loopback port (e.g. a proxy)."""
    known_hosts.write_text(known_hosts_line(endpoint.host, port, endpoint.host_key))
    return SshEndpoint(
        endpoint.host, port, endpoint.user, endpoint.key_path, known_hosts, endpoint.host_key
    )


def wait_for_banner(port: int, timeout: float = 30) -> None:
    """Waits for sshd's banner; a bare TCP connect proves nothing (Docker's port proxy accepts
    connections before the container listens)."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                if conn.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError as error:
            last_error = str(error)
        time.sleep(0.2)
    raise NotProvisioned(f"no sshd banner on 127.0.0.1:{port} within {timeout}s {last_error}")


class SshHostContainer:
    def __init__(
        self, client: docker.DockerClient, run: RunDir, image: str, role: str, docker_socket: bool
    ) -> None:
        keys = ssh_keys()
        host_key = require(keys / "hosts" / role / "ssh_host_ed25519_key", f"SSH host key {role}")
        client_key = require(keys / "client" / "id_ed25519", "the SSH client key")
        mount = run.subdir(f"ssh-{role}/etc")
        mount.chmod(0o755)
        shutil.copy2(host_key, mount / "ssh_host_ed25519_key")
        shutil.copy2(keys / "client" / "authorized_keys", mount / "authorized_keys")
        volumes = {str(mount): {"bind": "/etc/ssh/testbed", "mode": "ro"}}
        if docker_socket:
            volumes["/var/run/docker.sock"] = {"bind": "/var/run/docker.sock", "mode": "rw"}
        self.name = f"heliostat-testbed-ssh-{role}-{run.token}"
        self.container = client.containers.run(
            image,
            name=self.name,
            hostname=f"ssh-{role}",
            detach=True,
            labels=run.labels,
            ports={"22/tcp": ("127.0.0.1", None)},
            volumes=volumes,
        )
        self.container.reload()
        port = int(self.container.ports["22/tcp"][0]["HostPort"])
        wait_for_banner(port)
        public_key = " ".join(Path(f"{host_key}.pub").read_text().split()[:2])  # drop the comment
        known_hosts = run.path / f"ssh-{role}" / "known_hosts"
        known_hosts.write_text(known_hosts_line("127.0.0.1", port, public_key))
        self.endpoint = SshEndpoint("127.0.0.1", port, USER, client_key, known_hosts, public_key)

    def remove(self) -> None:
        self.container.remove(force=True)


class SshProxy:
    """An SSH host reached through a TcpProxy: same identity and credentials, the proxy's
    port, and `cut()` to sever the session mid-transfer."""

    def __init__(self, endpoint: SshEndpoint, proxy: TcpProxy, known_hosts: Path) -> None:
        self.proxy = proxy
        self.endpoint = endpoint_at(endpoint, proxy.port, known_hosts)
        self.host = self.endpoint.host
        self.port = self.endpoint.port
        self.user = self.endpoint.user
        self.key_path = self.endpoint.key_path
        self.known_hosts = self.endpoint.known_hosts
        self.host_key = self.endpoint.host_key

    def cut(self) -> None:
        self.proxy.cut()
