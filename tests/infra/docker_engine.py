"""The local Docker Engine and the images provisioning made."""

from __future__ import annotations

import os

import docker
import docker.errors

from tests.infra.settings import PROVISION_HINT, NotProvisioned, pinned


def engine_url() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def connect() -> docker.DockerClient:
    """A client for the local engine, or NotProvisioned saying why there is none."""
    try:
        client = docker.DockerClient(base_url=engine_url(), timeout=120)
        client.ping()
    except docker.errors.DockerException as error:
        raise NotProvisioned(
            f"Docker Engine at {engine_url()} does not answer ({error}); {PROVISION_HINT}"
        ) from error
    return client


def require_image(client: docker.DockerClient, key: str) -> str:
    """The tag pinned under `key` in testbed.env, checked to be present in the engine."""
    tag = pinned()[key]
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound as error:
        raise NotProvisioned(f"image {tag} is missing; {PROVISION_HINT}") from error
    return tag
