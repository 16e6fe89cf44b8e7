"""An air-gapped Docker host behind a jump host, both real sshd containers, for the ssh
transport's tests.

- `jump`: Debian's sshd, published on a loopback port, on the default bridge and on an
  `--internal` network (no route out of it).
- `target`: Debian's sshd with the engine's socket, on the internal network only, so this
  machine reaches it only through the jump host (as `root@airgapped:22`). Its containers
  run on this machine's engine, so the directory that holds platform state (`share`) is
  mounted at the same path inside it: bind mounts the driver makes name the same files.

Client keys: the test bed's key, a passphrase-protected one, one for the agent only (all
three authorized) and one no host authorizes.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import docker
from docker.models.containers import Container

from tests.infra.run_dir import RunDir
from tests.infra.settings import require, ssh_keys
from tests.infra.ssh_hosts import known_hosts_line, wait_for_banner

TARGET_NAME = "airgapped"
PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class ClientKeys:
    plain: Path
    passphrase: Path
    passphrase_file: Path
    agent_only: Path
    refused: Path


def make_key(path: Path, passphrase: str = "") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", path.name,
                    "-f", str(path)], check=True)
    return path


def public_key(path: Path) -> str:
    """`type base64` of a key's .pub file, without its comment."""
    return " ".join(Path(f"{path}.pub").read_text().split()[:2])


class AirgappedHosts:
    def __init__(self, client: docker.DockerClient, run: RunDir, image: str) -> None:
        started = time.monotonic()
        self.client = client
        self.image, self.token, self.labels = image, run.token, run.labels
        self.root = run.subdir("ssh-airgap")
        self.share = self.root / "share"  # same path on this machine and on the target
        self.share.mkdir(exist_ok=True)
        keys_dir = self.root / "keys"
        keys_dir.mkdir(exist_ok=True)
        testbed = ssh_keys()
        plain = require(testbed / "client" / "id_ed25519", "the SSH client key")
        self.keys = ClientKeys(
            plain=plain,
            passphrase=make_key(keys_dir / "id_passphrase", PASSPHRASE),
            passphrase_file=keys_dir / "passphrase",
            agent_only=make_key(keys_dir / "id_agent"),
            refused=make_key(keys_dir / "id_refused"),
        )
        self.keys.passphrase_file.write_text(PASSPHRASE + "\n")
        authorized = "".join(f"{public_key(k)}\n" for k in
                             (plain, self.keys.passphrase, self.keys.agent_only))
        self.host_keys = {role: public_key(require(
            testbed / "hosts" / role / "ssh_host_ed25519_key", f"SSH host key {role}"))
            for role in ("plain", "docker")}
        self.network = client.networks.create(f"heliostat-testbed-airgap-{run.token}",
                                              internal=True, labels=run.labels)
        self.containers: list[Container] = []
        try:
            jump_etc = self._etc("jump", testbed / "hosts" / "plain", authorized)
            self.jump = client.containers.run(
                image, name=f"heliostat-testbed-ssh-jump-{run.token}", hostname="jump",
                detach=True, labels=run.labels, ports={"22/tcp": ("127.0.0.1", None)},
                volumes={str(jump_etc): {"bind": "/etc/ssh/testbed", "mode": "ro"}})
            self.containers.append(self.jump)
            self.network.connect(self.jump)
            self._target_etc = self._etc("target", testbed / "hosts" / "docker", authorized)
            self.target = self.add_target(TARGET_NAME, Path("/var/run/docker.sock"))
            self.jump.reload()
            self.jump_port = int(self.jump.ports["22/tcp"][0]["HostPort"])
            wait_for_banner(self.jump_port)
        except BaseException:
            self.remove()
            raise
        self.setup_seconds = time.monotonic() - started

    def add_target(self, name: str, engine_socket: Path) -> Container:
        """A Docker host on the internal network only, reached by `name` from the jump
        host, whose engine is the one listening on `engine_socket` on this machine."""
        container = self.client.containers.run(
            self.image, name=f"heliostat-testbed-ssh-{name}-{self.token}", hostname=name,
            detach=True, labels=self.labels, network=self.network.name,
            volumes={str(self._target_etc): {"bind": "/etc/ssh/testbed", "mode": "ro"},
                     str(engine_socket): {"bind": "/var/run/docker.sock", "mode": "rw"},
                     str(self.share): {"bind": str(self.share), "mode": "rw"}})
        self.containers.append(container)
        # Reached by its name on the internal network, as a host behind a bastion is.
        self.network.disconnect(container)
        self.network.connect(container, aliases=[name])
        self._wait_for(name)
        return container

    def _etc(self, name: str, host_key_dir: Path, authorized: str) -> Path:
        etc = self.root / f"etc-{name}"
        etc.mkdir(exist_ok=True)
        etc.chmod(0o755)
        shutil.copy2(host_key_dir / "ssh_host_ed25519_key", etc / "ssh_host_ed25519_key")
        (etc / "authorized_keys").write_text(authorized)
        return etc

    def _wait_for(self, name: str, timeout: float = 30) -> None:
        """Until the jump host sees the sshd banner of `name`."""
        probe = ("import socket,sys\ns=socket.create_connection((sys.argv[1],22),timeout=2)\n"
                 "sys.exit(0 if s.recv(8).startswith(b'SSH-2.0') else 1)")
        deadline = time.monotonic() + timeout
        while True:
            result = self.jump.exec_run(["python3", "-c", probe, name])
            if result.exit_code == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the jump host cannot reach {name}:22: "
                                     f"{result.output.decode(errors='replace')}")
            time.sleep(0.2)

    def known_hosts(self, path: Path, jump_port: int, *, target_key: str | None = None,
                    jump_key: str | None = None, target: str = TARGET_NAME) -> Path:
        """A known_hosts trusting the jump host at `jump_port` and the target."""
        path.write_text(
            known_hosts_line("127.0.0.1", jump_port, jump_key or self.host_keys["plain"])
            + known_hosts_line(target, 22, target_key or self.host_keys["docker"]))
        return path

    def staged_files(self) -> list[str]:
        result = self.target.exec_run(["sh", "-c", "ls /root/.cache/heliostat/staging "
                                                   "2>/dev/null || true"])
        return result.output.decode().split()

    def remove(self) -> None:
        for container in self.containers:
            container.remove(force=True)
        self.network.remove()


def platform_yaml(path: Path, name: str, share: Path, port: int, ssh: str,
                  host: str = f"ssh://root@{TARGET_NAME}:22") -> Path:
    """The small test platform (gateway and registry) on the air-gapped host; `ssh` is the
    YAML of target.compose.ssh."""
    password = share / f"{name}-pg-password"
    password.write_text("not-used\n")
    path.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {name}
        profile: compose
        gateway: {{http_port: {port}}}
        images: {{registry: ""}}
        target:
          compose:
            host: {host}
            state_dir: {share / "state"}
            ssh: {ssh}
        modules:
          clickstream: {{enabled: false}}
          pilot: {{enabled: false}}
          commander: {{enabled: false}}
          monitoring: {{enabled: false}}
        stores:
          postgres: {{mode: external, host: pg.invalid, database: x, user: x,
                     password_file: {password}}}
          redis: {{mode: external, host: redis.invalid}}
          kafka: {{mode: external, bootstrap: ["kafka.invalid:9092"]}}
        """))
    return path

