"""The second, image-less and network-less Docker engine the bundle tests load into:
it starts empty, answers, and leaves the test bed engine's networking as it was."""

from __future__ import annotations

import subprocess

import docker

from tests.infra.docker_engines import IsolatedEngine
from tests.infra.run_dir import RunDir


def _links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                          check=True).stdout


def test_isolated_engine_is_empty_and_leaves_the_host_bridge(testbed_run: RunDir,
                                                             docker_client: docker.DockerClient):
    assert " docker0:" in _links()
    engine = IsolatedEngine(testbed_run.path / "isolated-engine-check")
    client = engine.start()
    try:
        assert client.images.list() == []
        assert client.info()["DockerRootDir"] == str(engine.directory / "data")
    finally:
        client.close()
        engine.stop()
    assert " docker0:" in _links()
    assert not engine.directory.exists()
