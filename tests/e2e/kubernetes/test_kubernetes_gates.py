"""The kubernetes driver's health gates on a real control plane: a gate follows its object
by a watch, passes once the rollout is done even when the API server restarted meanwhile,
and fails with a clear error when the API server stays away."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from heliostat.driver import DesiredObject, Health, PlanStep
from heliostat.drivers.kubernetes import KubernetesDriver
from heliostat.drivers.kubernetes_api import connect
from heliostat.drivers.kubernetes_errors import KubernetesUnreachable
from tests.infra.kubernetes_cluster import NODES, KubernetesCluster

NODE_LABEL = "heliostat.test/gate"


def wait_until(what: str, check: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(0.05)


class Gate:
    """`driver.wait(step)` in a thread of its own: its health, or what it raised."""

    def __init__(self, driver: KubernetesDriver, step: PlanStep) -> None:
        self.health: Health | None = None
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(driver, step), daemon=True)
        self._thread.start()

    def _run(self, driver: KubernetesDriver, step: PlanStep) -> None:
        try:
            self.health = driver.wait(step, time.monotonic() + 180)
        except Exception as error:  # what the gate raised is what the test checks
            self.error = error

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the gate did not end within {timeout:.0f}s"


@pytest.fixture
def gated(kubernetes: KubernetesCluster) -> Iterator[dict[str, Any]]:
    """A platform namespace and a Deployment whose pod waits, unscheduled, for a node
    with this test's label."""
    platform = f"g{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex[:12]
    yield {"platform": platform, "token": token}
    kubernetes.kubectl("label", "node", NODES[0], f"{NODE_LABEL}-", check=False)
    kubernetes.kubectl("delete", "namespace", platform, "--wait=false", check=False)


def deployment_step(platform: str, token: str) -> PlanStep:
    labels = {"app.kubernetes.io/name": "gated", "app.kubernetes.io/part-of": platform,
              "app.kubernetes.io/managed-by": "heliostat"}
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "gated", "namespace": platform, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "gated"}},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "nodeSelector": {NODE_LABEL: token},
                     "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": "gated", "image": "heliostat/base:0.1.0"}]}}},
    }
    return PlanStep("create", "deployment/gated", 1,
                    DesiredObject("deployment/gated", "gated", body), None)


def open_driver(kubernetes: KubernetesCluster, platform: str,
                reconnect_seconds: float) -> KubernetesDriver:
    return KubernetesDriver(platform, platform, connect(str(kubernetes.kubeconfig)),
                            reconnect_seconds=reconnect_seconds)


def following(driver: KubernetesDriver) -> bool:
    watches = driver.watches()
    return all(watches.of(api_version, kind).synced
               for api_version, kind in (("apps/v1", "Deployment"), ("v1", "Pod")))


@contextlib.contextmanager
def following_gate(kubernetes: KubernetesCluster, gated: dict[str, Any],
                   reconnect_seconds: float) -> Iterator[Gate]:
    """The gated Deployment applied, and a gate on it that follows it by its watches."""
    driver = open_driver(kubernetes, gated["platform"], reconnect_seconds)
    try:
        step = deployment_step(gated["platform"], gated["token"])
        driver.apply(step, revision=1)
        gate = Gate(driver, step)
        wait_until("the gate follows the Deployment and its pods", lambda: following(driver))
        yield gate
    finally:
        driver.close()
        driver.connection.close()


def test_a_gate_follows_its_rollout_across_an_api_server_restart(
    kubernetes: KubernetesCluster, gated: dict[str, Any],
) -> None:
    with following_gate(kubernetes, gated, reconnect_seconds=60) as gate:
        assert gate.health is None and gate.error is None  # its pod cannot be scheduled
        kubernetes.stop_apiserver()
        kubernetes.start_apiserver()
        # Only now can the pod run: the gate must learn it from the renewed watches.
        kubernetes.kubectl("label", "node", NODES[0], f"{NODE_LABEL}={gated['token']}")
        gate.join(timeout=120)
        assert gate.error is None, gate.error
        assert gate.health == Health.ok()


def test_a_gate_fails_clearly_when_the_api_server_stays_away(
    kubernetes: KubernetesCluster, gated: dict[str, Any],
) -> None:
    with following_gate(kubernetes, gated, reconnect_seconds=2) as gate:
        kubernetes.stop_apiserver()
        try:
            gate.join(timeout=60)
        finally:
            kubernetes.start_apiserver()
        assert isinstance(gate.error, KubernetesUnreachable), gate.error or gate.health
        assert f"the Kubernetes API server at {kubernetes.server} went away" in str(gate.error)
        assert "has not answered for 2s" in str(gate.error)
