"""Watches one test session and cleans up after it if pytest dies without its teardown.

Started detached by the session (`python -m tests.infra.reaper <run dir>`); exits as soon as
the run directory is gone (normal teardown) or its owner is gone (after sweeping it).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import docker

from tests.infra.docker_engine import engine_url
from tests.infra.leftovers import remove_owned_docker_objects, sweep_run
from tests.infra.run_dir import token_alive


def watch(run_path: Path, poll_seconds: float = 1.0) -> None:
    owner = run_path.name
    while run_path.exists() and token_alive(owner):
        time.sleep(poll_seconds)
    if not run_path.exists():
        return
    sweep_run(run_path)
    # No engine answering means no containers of this session to remove either.
    with contextlib.suppress(docker.errors.DockerException):
        remove_owned_docker_objects(docker.DockerClient(base_url=engine_url()), owner)


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
