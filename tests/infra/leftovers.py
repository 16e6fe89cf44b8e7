"""Removes what test sessions that no longer exist left behind: processes and containers.

Called at the start of every session (for runs that were killed) and by the reaper that each
session starts (for the session itself, should pytest die without its teardown).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

import docker
import docker.errors

from tests.infra.run_dir import OWNER_LABEL, RUNS, process_token, token_alive


def kill_recorded_processes(run_path: Path) -> None:
    for record in (run_path / "pids").glob("*"):
        token = record.read_text().strip()
        pid = int(token.partition("-")[0])
        # Only if the pid still is the process we started, not a reuse of its number.
        if process_token(pid) == token:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def remove_owned_docker_objects(client: docker.DockerClient, owner: str | None) -> None:
    """Containers and networks of `owner`, or of every owner that is gone when owner is None."""

    def abandoned(labels: dict[str, str] | None) -> bool:
        token = (labels or {}).get(OWNER_LABEL)
        if token is None:
            return False
        return token == owner if owner else not token_alive(token)

    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        if abandoned(container.labels):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
    for network in client.networks.list(filters={"label": OWNER_LABEL}):
        if abandoned(network.attrs.get("Labels")):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()


def sweep_run(run_path: Path) -> None:
    kill_recorded_processes(run_path)
    shutil.rmtree(run_path, ignore_errors=True)


def sweep_abandoned_runs() -> None:
    if not RUNS.is_dir():
        return
    for run_path in RUNS.iterdir():
        if run_path.is_dir() and not token_alive(run_path.name):
            sweep_run(run_path)
