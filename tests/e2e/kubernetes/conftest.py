"""Fixtures of the Kubernetes e2e tests that talk to the API server directly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes.client import ApiClient

from heliostat.drivers.kubernetes_api import connect
from tests.infra.kubernetes_cluster import KubernetesCluster


@pytest.fixture
def namespace(kubernetes: KubernetesCluster) -> Iterator[str]:
    """A namespace of the test's own, deleted after it."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    kubernetes.kubectl("create", "namespace", name)
    yield name
    kubernetes.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def api(kubernetes: KubernetesCluster) -> Iterator[ApiClient]:
    connection = connect(str(kubernetes.kubeconfig))
    yield connection.api
    connection.close()
