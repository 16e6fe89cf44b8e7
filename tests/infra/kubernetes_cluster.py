"""A real Kubernetes control plane per test session: etcd, kube-apiserver (TLS, RBAC),
kube-controller-manager, kube-scheduler, and kwok simulating the kubelets of a few nodes, all
as processes of the session on free loopback ports (binaries from
tests/infra/steps/kubernetes.sh).

Deployments, StatefulSets and Jobs really roll out: the scheduler binds pods to the simulated
nodes, kwok's stages mark them Ready (or Succeeded, for a Job's pods), and claims of the
`kwok-volume` storage class are provisioned and bound.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests
import yaml

from tests.infra.kubernetes_pki import ClusterPki, KeyPair
from tests.infra.processes import ManagedProcess, free_port
from tests.infra.run_dir import RunDir
from tests.infra.settings import INFRA, NotProvisioned, cache_dir, pinned, require

STORAGE_CLASS = "kwok-volume"
# The controller manager's and scheduler's requests/s to the API server, as on a large
# cluster: at their default 20, a platform's install waits on their own client throttle.
CLIENT_RATE = ("--kube-api-qps=500", "--kube-api-burst=1000")
NODES = ("kwok-node-0", "kwok-node-1", "kwok-node-2")
# kwok's own stage definitions: how simulated nodes, pods and volumes change state.
STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
    "volume/fast/pvc-provision.yaml",
    "volume/fast/pv-bind.yaml",
    "volume/fast/pvc-delete.yaml",
    "volume/fast/pv-delete.yaml",
)


# Ours: a pod whose image reference contains `never-starts` waits in ImagePullBackOff.
NEVER_STARTS = INFRA / "kwok_stages" / "pod-image-never-starts.yaml"
_STARTS = {"key": '.spec.containers.[] | select( .image | contains("never-starts") ) | .name',
           "operator": "DoesNotExist"}


def kwok_stages(stage_home: Path) -> str:
    """kwok's stages, its pods' ones kept off the images that never start, and ours."""
    documents = []
    for stage in STAGES:
        document = yaml.safe_load(require(stage_home / stage, f"kwok's {stage} stage")
                                  .read_text())
        if document["spec"]["resourceRef"]["kind"] == "Pod" and \
                document["metadata"]["name"] in ("pod-ready", "pod-complete"):
            document["spec"]["selector"]["matchExpressions"].append(_STARTS)
        documents.append(document)
    documents.append(yaml.safe_load(NEVER_STARTS.read_text()))
    return yaml.safe_dump_all(documents)


def kubernetes_home() -> Path:
    versions = pinned()
    return cache_dir() / (
        f"kubernetes-{versions['KUBERNETES_VERSION']}-etcd-{versions['ETCD_VERSION']}"
        f"-kwok-{versions['KWOK_VERSION']}")


def write_kubeconfig(path: Path, server: str, ca: Path, client: KeyPair, user: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "testbed",
        "clusters": [{"name": "testbed", "cluster": {
            "server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {
            "client-certificate": str(client.certificate), "client-key": str(client.key)}}],
        "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": user}}],
    }))
    path.chmod(0o600)
    return path


class KubernetesCluster:
    start_timeout = 120

    def __init__(self, run: RunDir) -> None:
        home = kubernetes_home()
        self.bin = require(home / "bin", "the Kubernetes control plane binaries")
        for binary in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                       "kubectl", "kwok"):
            require(self.bin / binary, f"the {binary} binary")
        self.dir = run.subdir("kubernetes")
        self.pki = ClusterPki(self.dir)
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = write_kubeconfig(
            self.dir / "admin.kubeconfig", self.server, self.pki.ca, self.pki.admin,
            "kubernetes-admin")
        etcd_port, peer_port = free_port(), free_port()
        self._etcd = ManagedProcess("etcd", [
            str(self.bin / "etcd"), "--name=testbed", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=testbed=http://127.0.0.1:{peer_port}",
            # Test data only: an fsync per write would make every apply wait on the disk.
            "--unsafe-no-fsync", "--quota-backend-bytes=2147483648",
        ], run)
        self._etcd_health = f"http://127.0.0.1:{etcd_port}/health"
        pki = self.pki
        self.apiserver = ManagedProcess("kube-apiserver", [
            str(self.bin / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={pki.apiserver.certificate}",
            f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca}",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/12",
            # The `kubernetes` Service would point at loopback, which Endpoints refuse.
            "--endpoint-reconciler-type=none",
        ], run)
        self._controller_manager = ManagedProcess("kube-controller-manager", [
            str(self.bin / "kube-controller-manager"),
            *self._component_kubeconfig("controller-manager", pki.controller_manager,
                                        "system:kube-controller-manager"),
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca}", "--use-service-account-credentials=true",
            "--leader-elect=false", *CLIENT_RATE,
        ], run)
        self._scheduler = ManagedProcess("kube-scheduler", [
            str(self.bin / "kube-scheduler"),
            *self._component_kubeconfig("scheduler", pki.scheduler, "system:kube-scheduler"),
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            "--leader-elect=false", *CLIENT_RATE,
        ], run)
        stages = self.dir / "kwok-stages.yaml"
        stages.write_text(kwok_stages(home / "stages"))
        kwok_kubeconfig = write_kubeconfig(
            self.dir / "kwok.kubeconfig", self.server, pki.ca, pki.kwok, "kwok-controller")
        self._kwok = ManagedProcess("kwok", [
            str(self.bin / "kwok"), f"--kubeconfig={kwok_kubeconfig}", f"--config={stages}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.0.0.1/16", "--node-ip=10.0.0.1",
            f"--server-address=127.0.0.1:{free_port()}", "--node-lease-duration-seconds=40",
        ], run)
        self._processes = [self._etcd, self.apiserver, self._controller_manager,
                           self._scheduler, self._kwok]

    def _component_kubeconfig(self, name: str, pair: KeyPair, user: str) -> list[str]:
        path = write_kubeconfig(self.dir / f"{name}.kubeconfig", self.server, self.pki.ca,
                                pair, user)
        return [f"--kubeconfig={path}", f"--authentication-kubeconfig={path}",
                f"--authorization-kubeconfig={path}"]

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._etcd.start()
        self._etcd.wait_until(self._etcd_healthy, "etcd health", self.start_timeout)
        self._start_apiserver()
        for process in (*self._controllers, self._kwok):
            process.start()
        self.kubectl("apply", "-f", str(require(
            kubernetes_home() / "stages/volume/fast/storage-class.yaml", "kwok's storage class")))
        self.kubectl("apply", "-f", "-", input=self._nodes_yaml())
        self._wait_whole("default")

    @property
    def _controllers(self) -> tuple[ManagedProcess, ...]:
        return self._controller_manager, self._scheduler

    def _wait_whole(self, namespace: str) -> None:
        self._wait(self._nodes_ready, "every simulated node Ready")
        # The service-account controller runs once `default` exists in a namespace.
        self._wait(lambda: self.kubectl("get", "serviceaccount", "default", "-n", namespace,
                                        check=False).returncode == 0,
                   "the service-account controller")

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop(timeout=5)

    def stop_apiserver(self) -> None:
        """The API server goes away (clients see connection refused) until `start_apiserver`.
        SIGTERM, then SIGKILL after 5 s: it keeps draining its watches for longer than a
        test should wait, and etcd keeps every acknowledged write either way."""
        self.apiserver.stop(timeout=5)

    def start_apiserver(self) -> None:
        """The API server back, and the controller manager and scheduler started anew:
        after an outage their client-go watches back off for up to 30 s each, and the tests
        that share this control plane must find it whole at once."""
        self._start_apiserver()
        for process in self._controllers:
            process.stop(timeout=5)
            process.start()
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", probe)
        self._wait_whole(probe)
        self.kubectl("delete", "namespace", probe, "--wait=false")

    def _start_apiserver(self) -> None:
        self.apiserver.start()
        self.apiserver.wait_until(self._apiserver_ready, "kube-apiserver /readyz",
                                  self.start_timeout)

    # -- clients ---------------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}",
             *args], input=input, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def kubeconfig_for(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for another identity, e.g. a user RBAC grants only a namespace."""
        pair = self.pki.issue_client(f"user-{user}", user, groups)
        return write_kubeconfig(self.dir / f"{user}.kubeconfig", self.server, self.pki.ca,
                                pair, user)

    # -- readiness -------------------------------------------------------------------------

    def _etcd_healthy(self) -> bool:
        try:
            return requests.get(self._etcd_health, timeout=2).json().get("health") == "true"
        except (requests.RequestException, ValueError):
            return False

    def _apiserver_ready(self) -> bool:
        try:
            answer = requests.get(
                f"{self.server}/readyz", timeout=2, verify=str(self.pki.ca),
                cert=(str(self.pki.admin.certificate), str(self.pki.admin.key)))
        except requests.RequestException:
            return False
        return answer.status_code == 200

    def _nodes_ready(self) -> bool:
        result = self.kubectl("get", "nodes", "-o", "yaml", check=False)
        if result.returncode != 0:
            return False
        ready = [
            node for node in yaml.safe_load(result.stdout)["items"]
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in node.get("status", {}).get("conditions", []))]
        return len(ready) == len(NODES)

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for process in self._processes:
                if not process.running:
                    raise NotProvisioned(
                        f"{process.name} exited while waiting for {what}; log "
                        f"{process.log_path}:\n{process.log_tail()}")
            if condition():
                return
            time.sleep(0.2)
        raise NotProvisioned(f"Kubernetes test bed: {what} not reached within "
                             f"{self.start_timeout}s; logs in {self.dir.parent / 'logs'}")

    @staticmethod
    def _nodes_yaml() -> str:
        return "\n---\n".join(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake",
                                "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                           "kubernetes.io/arch": "amd64", "type": "kwok"},
            },
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}},
        }) for name in NODES)
