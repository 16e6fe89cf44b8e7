"""Registry round trip: a push from the engine, delivered as a notification to a test
endpoint, and the pushed tag listed by the registry's API."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
import uuid

import docker

from tests.infra.http_sink import HttpSink, Received
from tests.infra.registry import Registry


def tiny_image(client: docker.DockerClient, repository: str, tag: str) -> None:
    """A one-file image, unique by content, so the push really uploads a new layer."""
    content = uuid.uuid4().bytes
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("probe")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    client.api.import_image_from_data(layer.getvalue(), repository=repository, tag=tag)


def test_push_delivers_a_notification(
    registry: Registry, webhook_sink: HttpSink, docker_client: docker.DockerClient
) -> None:
    repository, tag = f"{registry.url}/testbed/probe", uuid.uuid4().hex[:12]
    tiny_image(docker_client, repository, tag)
    try:
        with registry.with_notifications(webhook_sink.url):
            progress = list(docker_client.api.push(repository, tag, stream=True, decode=True))
            assert not [p for p in progress if "error" in p], progress

            def is_push_of_tag(request: Received) -> bool:
                return any(
                    event["action"] == "push"
                    and event["target"]["repository"] == "testbed/probe"
                    and event["target"].get("tag") == tag
                    for event in request.json()["events"]
                )

            delivered = webhook_sink.wait_for(is_push_of_tag, timeout=30)
        assert delivered.headers["Content-Type"].startswith(
            "application/vnd.docker.distribution.events.v1+json"
        )
        with urllib.request.urlopen(f"http://{registry.url}/v2/testbed/probe/tags/list") as r:
            assert tag in json.load(r)["tags"]
    finally:
        docker_client.images.remove(f"{repository}:{tag}", force=True)
