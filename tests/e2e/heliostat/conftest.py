"""Images the Compose e2e tests upgrade to when an upgrade must fail."""

import contextlib
import os
from collections.abc import Iterator

import docker
import docker.errors
import pytest


@pytest.fixture
def broken_images(compose_engine: docker.DockerClient) -> Iterator[str]:
    """A registry prefix under which the gateway never becomes healthy (its process
    never listens) and the registry is the real one."""
    yield from _gateway_under_prefix(compose_engine, "unhealthy",
                                     "echo gateway: waiting for a config that never comes; "
                                     "exec sleep infinity")


@pytest.fixture
def crashing_images(compose_engine: docker.DockerClient) -> Iterator[str]:
    """Likewise, with a gateway that exits at once, again and again."""
    yield from _gateway_under_prefix(compose_engine, "crashing",
                                     "echo gateway: cannot bind, giving up >&2; exit 3")


@pytest.fixture
def slow_images(compose_engine: docker.DockerClient) -> Iterator[str]:
    """Likewise, with a gateway that starts only after 10 s: an apply that holds its
    lock that long, whatever the machine's speed."""
    yield from _gateway_under_prefix(compose_engine, "slow",
                                     'sleep 10; exec /usr/local/bin/heliostat-entrypoint '
                                     '\\"$@\\"')


def _gateway_under_prefix(client: docker.DockerClient, what: str, script: str) -> Iterator[str]:
    prefix = f"{what}-{os.getpid()}.invalid"
    base = client.containers.create("heliostat/gateway:0.1.0", entrypoint=["true"])
    try:
        base.commit(f"{prefix}/heliostat/gateway", "0.1.0",
                    # "gateway" is the script's $0; the image's command its "$@".
                    changes=f'ENTRYPOINT ["/bin/sh", "-c", "{script}", "gateway"]')
    finally:
        base.remove(force=True)
    client.images.get("heliostat/registry:0.1.0").tag(f"{prefix}/heliostat/registry", "0.1.0")
    yield prefix
    for name in ("gateway", "registry"):
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(f"{prefix}/heliostat/{name}:0.1.0", force=True)
