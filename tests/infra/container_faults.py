"""Faults injected into containers by name: pause, kill, stop. Whatever a test paused is
unpaused afterwards so its owner can still tear it down."""

from __future__ import annotations

import docker
import docker.errors


class ContainerFaults:
    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self._paused: set[str] = set()

    def pause(self, name: str) -> None:
        """Freezes every process of the container (cgroup freezer): connections hang, no reset."""
        self.client.containers.get(name).pause()
        self._paused.add(name)

    def unpause(self, name: str) -> None:
        self.client.containers.get(name).unpause()
        self._paused.discard(name)

    def kill(self, name: str, signal: str = "SIGKILL") -> None:
        self.client.containers.get(name).kill(signal=signal)

    def stop(self, name: str, timeout: int = 10) -> None:
        self.client.containers.get(name).stop(timeout=timeout)

    def start(self, name: str) -> None:
        self.client.containers.get(name).start()

    def restore(self) -> None:
        for name in list(self._paused):
            try:
                self.unpause(name)
            except docker.errors.APIError:
                self._paused.discard(name)  # removed or already unpaused by the test
