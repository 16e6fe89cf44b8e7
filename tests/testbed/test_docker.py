"""Docker round trip: two containers of the base image on a user network, one reaching the
other by name; then the pause and kill faults seen from the client's side."""

from __future__ import annotations

import uuid

import docker

from tests.infra.container_faults import ContainerFaults
from tests.infra.run_dir import RunDir

FETCH = (
    "import sys, urllib.request;"
    "print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())"
)


def fetch(
    client: docker.DockerClient, image: str, network: str, labels: dict[str, str], url: str
) -> str:
    """Runs a one-off client container fetching `url`; its output, or the error it died with."""
    container = client.containers.run(
        image, ["python3", "-c", FETCH, url], network=network, labels=labels, detach=True
    )
    try:
        status = container.wait(timeout=60)
        output = container.logs().decode().strip()
        return output if status["StatusCode"] == 0 else f"failed: {output[-200:]}"
    finally:
        container.remove(force=True)


def test_container_reached_by_name_and_faults(
    docker_client: docker.DockerClient,
    base_image: str,
    testbed_run: RunDir,
    container_faults: ContainerFaults,
) -> None:
    labels = testbed_run.labels
    token = uuid.uuid4().hex
    network = docker_client.networks.create(f"testbed-net-{token[:8]}", labels=labels)
    server_name = f"testbed-web-{token[:8]}"
    server = docker_client.containers.run(
        base_image,
        ["sh", "-c", f"mkdir -p /srv && echo {token} > /srv/token && "
         "exec python3 -m http.server 8000 --directory /srv"],
        name=server_name, network=network.name, labels=labels, detach=True,
    )  # fmt: skip

    def fetch_token() -> str:
        url = f"http://{server_name}:8000/token"  # the container's name is its DNS name
        return fetch(docker_client, base_image, network.name, labels, url)

    try:
        # The server needs a moment to bind; retry the first fetch briefly.
        for _ in range(20):
            if (result := fetch_token()) == token:
                break
        server.reload()
        assert (server.status, result) == ("running", token), server.logs()[-500:]

        container_faults.pause(server_name)
        assert "timed out" in fetch_token()
        container_faults.unpause(server_name)
        assert fetch_token() == token

        container_faults.kill(server_name)
        server.reload()
        assert server.status == "exited"
        assert server.attrs["State"]["ExitCode"] == 137
    finally:
        server.remove(force=True)
        network.remove()
