"""The Kubernetes test bed is a real control plane: workloads roll out on the simulated nodes,
claims are bound, RBAC refuses a user without a binding, and the API server can be stopped
and started again with its state intact."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
import yaml

from tests.infra.kubernetes_cluster import NODES, STORAGE_CLASS, KubernetesCluster

WORKLOADS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: web, image: example.invalid/web:1}}]}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: store, namespace: {ns}}}
spec:
  replicas: 2
  serviceName: store
  selector: {{matchLabels: {{app: store}}}}
  template:
    metadata: {{labels: {{app: store}}}}
    spec:
      containers:
      - name: store
        image: example.invalid/store:1
        volumeMounts: [{{name: data, mountPath: /data}}]
  volumeClaimTemplates:
  - metadata: {{name: data}}
    spec:
      storageClassName: {storage_class}
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: migrate, namespace: {ns}}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: migrate, image: example.invalid/migrate:1}}]
"""


@pytest.fixture
def namespace(kubernetes: KubernetesCluster) -> str:
    name = f"testbed-{uuid.uuid4().hex[:8]}"
    kubernetes.kubectl("create", "namespace", name)
    # A bare pod is refused until the controller manager made the namespace's default
    # service account.
    kubernetes.kubectl("wait", "--for=create", "serviceaccount/default", "-n", name,
                       "--timeout=60s")
    return name


def test_workloads_roll_out_on_the_simulated_nodes(
    kubernetes: KubernetesCluster, namespace: str
) -> None:
    kubernetes.kubectl("apply", "--server-side", "-f", "-",
                       input=WORKLOADS.format(ns=namespace, storage_class=STORAGE_CLASS))
    for workload in ("deployment/web", "statefulset/store"):
        kubernetes.kubectl("rollout", "status", workload, "-n", namespace, "--timeout=90s")
    kubernetes.kubectl("wait", "--for=condition=complete", "job/migrate", "-n", namespace,
                       "--timeout=90s")
    pods = yaml.safe_load(kubernetes.kubectl("get", "pods", "-n", namespace, "-o", "yaml")
                          .stdout)["items"]
    assert {pod["spec"]["nodeName"] for pod in pods} <= set(NODES)  # bound by the scheduler
    claims = yaml.safe_load(kubernetes.kubectl("get", "pvc", "-n", namespace, "-o", "yaml")
                            .stdout)["items"]
    assert sorted(c["metadata"]["name"] for c in claims) == ["data-store-0", "data-store-1"]
    assert {c["status"]["phase"] for c in claims} == {"Bound"}


def test_tls_and_rbac_are_on(kubernetes: KubernetesCluster, namespace: str) -> None:
    # No client certificate: anonymous requests are refused their way into the API.
    anonymous = requests.get(f"{kubernetes.server}/api/v1/namespaces", timeout=10,
                             verify=str(kubernetes.pki.ca))
    assert anonymous.status_code in (401, 403)
    nobody = kubernetes.kubeconfig_for("nobody")
    refused = kubernetes.kubectl("get", "pods", "-n", namespace, kubeconfig=nobody,
                                 check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower()
    kubernetes.kubectl("create", "rolebinding", "nobody-view", "--clusterrole=view",
                       "--user=nobody", "-n", namespace)
    allowed = kubernetes.kubectl("auth", "can-i", "list", "pods", "-n", namespace,
                                 kubeconfig=nobody, check=False)
    assert allowed.stdout.strip() == "yes"


def test_the_api_server_stops_and_starts_with_its_state(
    kubernetes: KubernetesCluster, namespace: str
) -> None:
    kubernetes.kubectl("create", "configmap", "kept", "--from-literal=a=1", "-n", namespace)
    kubernetes.stop_apiserver()
    try:
        down = kubernetes.kubectl("get", "configmap", "kept", "-n", namespace,
                                  "--request-timeout=5s", check=False)
        assert down.returncode != 0 and "refused" in down.stderr
    finally:
        kubernetes.start_apiserver()
    kept = kubernetes.kubectl("get", "configmap", "kept", "-n", namespace,
                              "-o", "jsonpath={.data.a}")
    assert kept.stdout == "1"


def test_an_image_that_never_starts_waits_in_image_pull_back_off(
    kubernetes: KubernetesCluster, namespace: str
) -> None:
    """The test bed's stand-in for an image a node cannot pull: a failed rollout."""
    kubernetes.kubectl("run", "stuck", "--image=registry.invalid/never-starts:1",
                       "-n", namespace)

    def waiting_reason() -> str:
        return kubernetes.kubectl(
            "get", "pod", "stuck", "-n", namespace, "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}").stdout

    deadline = time.monotonic() + 60
    while waiting_reason() != "ImagePullBackOff":
        assert time.monotonic() < deadline, "the pod never reached ImagePullBackOff"
        time.sleep(0.2)
    ready = kubernetes.kubectl("get", "pod", "stuck", "-n", namespace, "-o",
                               "jsonpath={.status.conditions[?(@.type=='Ready')].status}")
    assert ready.stdout == "False"
