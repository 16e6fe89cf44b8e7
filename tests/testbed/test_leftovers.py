"""The clean-up machinery: what a dead session left behind is found and removed."""

from __future__ import annotations

import subprocess

import docker

from tests.infra.leftovers import remove_owned_docker_objects, sweep_abandoned_runs
from tests.infra.run_dir import OWNER_LABEL, RUNS, process_token


def dead_owner_token() -> str:
    """The token of a process that has exited: pid and start time that no longer match."""
    probe = subprocess.Popen(["true"])
    token = process_token(probe.pid)
    probe.wait()
    assert token is not None
    return token


def test_processes_of_a_dead_session_are_killed() -> None:
    owner = dead_owner_token()
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True)
    run_path = RUNS / owner
    (run_path / "pids").mkdir(parents=True)
    (run_path / "pids" / "orphan").write_text(str(process_token(orphan.pid)))

    sweep_abandoned_runs()

    assert orphan.wait(10) == -9
    assert not run_path.exists()


def test_containers_of_a_dead_session_are_removed(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    owner = dead_owner_token()
    container = docker_client.containers.run(
        base_image, ["sleep", "300"], labels={OWNER_LABEL: owner}, detach=True
    )
    network = docker_client.networks.create(f"testbed-dead-{owner}", labels={OWNER_LABEL: owner})

    remove_owned_docker_objects(docker_client, owner=None)

    names = {c.name for c in docker_client.containers.list(all=True)}
    assert container.name not in names
    assert network.name not in {n.name for n in docker_client.networks.list()}
