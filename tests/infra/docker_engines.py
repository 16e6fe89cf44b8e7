"""A second Docker engine that holds no images and has no network: what an air-gapped
host looks like to `bundle load`. Its own dockerd (data root, exec root, socket) beside
the test bed's, started per test session and removed afterwards.

It runs in a network namespace of its own: a dockerd without a bridge deletes the
interface `docker0` at start, which would take the test bed engine's default bridge."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import docker
import docker.errors

from tests.infra.settings import NotProvisioned


class IsolatedEngine:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "docker.sock"
        self.url = f"unix://{self.socket}"
        self._process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> docker.DockerClient:
        if shutil.which("dockerd") is None:
            raise NotProvisioned("dockerd is not installed; run `make testbed`")
        self.directory.mkdir(parents=True, exist_ok=True)
        log = (self.directory / "dockerd.log").open("ab")
        self._process = subprocess.Popen(
            ["unshare", "--net", "--", "dockerd", "--data-root", str(self.directory / "data"),
             "--exec-root", str(self.directory / "exec"),
             "--pidfile", str(self.directory / "dockerd.pid"), "-H", self.url,
             "--bridge", "none", "--iptables=false", "--ip-masq=false", "--ip-forward=false"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                client = docker.DockerClient(base_url=self.url, timeout=600)
                client.ping()
                return client
            except docker.errors.DockerException:
                time.sleep(0.2)
        tail = (self.directory / "dockerd.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise NotProvisioned(f"a second dockerd did not start: {tail}")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        subprocess.run(["umount", "-R", str(self.directory / "exec")], capture_output=True,
                       check=False)
        shutil.rmtree(self.directory, ignore_errors=True)
