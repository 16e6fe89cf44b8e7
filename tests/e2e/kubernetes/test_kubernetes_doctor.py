"""`heliostat doctor` on a real Kubernetes control plane: the kubeconfig, the API server and
its version, this user's rights by SelfSubjectAccessReview (a user with none, then with a
Role for part of them), the StorageClass, the namespace, the lock held through the ledger's
own Lease, the registry and the bundle; the API server stopped and a kubeconfig that is not
there are reports, not tracebacks. Doctor changes nothing on the cluster."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from heliostat.drivers.kubernetes_api import connect
from heliostat.drivers.kubernetes_ledger import SecretLedgerStore
from heliostat.ledger_lock import Holder
from tests.infra.compose_platforms import heliostat_env
from tests.infra.kubernetes_cluster import STORAGE_CLASS, KubernetesCluster
from tests.infra.processes import free_port
from tests.infra.registry import Registry

REPOSITORY = Path(__file__).resolve().parents[3]
ORDER = ["kubeconfig", "api-server", "permissions", "storage-class", "namespace", "lock",
         "registry", "bundle"]


class Doctor:
    """A platform of its own namespace (not made: doctor must not need it), and doctor on it."""

    def __init__(self, cluster: KubernetesCluster, directory: Path) -> None:
        self.cluster = cluster
        self.name = f"d{uuid.uuid4().hex[:8]}"
        self.namespace = self.name
        self.directory = directory

    def config(self, storage_class: str = STORAGE_CLASS, extra: str = "") -> Path:
        path = self.directory / "platform.yaml"
        path.write_text(textwrap.dedent(f"""\
            apiVersion: heliostat/v1
            name: {self.name}
            profile: kubernetes
            target:
              kubernetes: {{namespace: {self.namespace}, storage_class: "{storage_class}"}}
            """) + textwrap.dedent(extra))
        return path

    def run(self, *args: str, kubeconfig: Path | None = None, config: Path | None = None,
            output: str = "json") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "heliostat", "doctor", "-f",
                   str(config or self.config()), "--kubeconfig",
                   str(kubeconfig or self.cluster.kubeconfig), "--output", output, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300,
                              cwd=REPOSITORY, env=heliostat_env(), stdin=subprocess.DEVNULL)

    def report(self, *args: str, kubeconfig: Path | None = None, config: Path | None = None,
               exit_code: int | None = None) -> dict[str, dict[str, str]]:
        result = self.run(*args, kubeconfig=kubeconfig, config=config)
        assert "Traceback" not in result.stderr, result.stderr
        if exit_code is not None:
            assert result.returncode == exit_code, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert [c["name"] for c in report["checks"]] == ORDER
        assert report["ok"] is (result.returncode == 0)
        return {c["name"]: c for c in report["checks"]}

    def create_namespace(self) -> None:
        self.cluster.kubectl("create", "namespace", self.namespace)

    def namespace_exists(self) -> bool:
        return self.cluster.kubectl("get", "namespace", self.namespace,
                                    check=False).returncode == 0


@pytest.fixture
def doctor(kubernetes: KubernetesCluster, tmp_path: Path) -> Iterator[Doctor]:
    platform = Doctor(kubernetes, tmp_path)
    yield platform
    kubernetes.kubectl("delete", "namespace", platform.namespace, "--wait=false", check=False)


def allowed_count(check: dict[str, str]) -> tuple[int, int]:
    match = re.match(r"(\d+) of (\d+) allowed", check["finding"])
    assert match, check["finding"]
    return int(match[1]), int(match[2])


def test_everything_ok_on_a_cluster_that_can_take_the_platform(doctor: Doctor) -> None:
    checks = doctor.report(exit_code=0)
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert all(c["fix"] == "" for c in checks.values())
    kubeconfig = checks["kubeconfig"]["finding"]
    assert str(doctor.cluster.kubeconfig) in kubeconfig
    assert "context testbed" in kubeconfig and doctor.cluster.server in kubeconfig
    assert checks["api-server"]["finding"] == (
        f"Kubernetes v1.37.2 at {doctor.cluster.server}")
    allowed, needed = allowed_count(checks["permissions"])
    # the default platform's kinds x 6 verbs, secrets, leases, pods, events, the namespace,
    # and what Role commander grants
    assert allowed == needed > 50
    assert f"namespace {doctor.namespace} for kubernetes-admin" in checks["permissions"]["finding"]
    assert checks["storage-class"]["finding"].startswith(
        f"StorageClass {STORAGE_CLASS} (provisioner kwok.x-k8s.io/volume) for the ")
    assert "volume claims" in checks["storage-class"]["finding"]
    assert checks["namespace"]["finding"].startswith(f"{doctor.namespace} does not exist yet")
    assert checks["lock"]["finding"] == (
        f"not held (no Lease {doctor.namespace}/heliostat-{doctor.name}-lock)")
    assert checks["registry"]["finding"].startswith("not used")
    assert checks["bundle"]["finding"].startswith("no --bundle given")
    # read-only: nothing was made
    assert not doctor.namespace_exists()

    text = doctor.run(output="text")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[-1] == (
        f"platform {doctor.name}: 8 ok, 0 warnings, 0 failed; this cluster can take it")


def test_the_clusters_default_storage_class_when_none_is_configured(doctor: Doctor) -> None:
    checks = doctor.report(config=doctor.config(storage_class=""), exit_code=0)
    assert checks["storage-class"]["finding"].startswith(
        f"the cluster's default StorageClass {STORAGE_CLASS} for the ")


def test_a_storage_class_the_cluster_does_not_have_fails(doctor: Doctor) -> None:
    checks = doctor.report(config=doctor.config(storage_class="no-such-class"), exit_code=1)
    storage = checks["storage-class"]
    assert storage["status"] == "fail"
    assert storage["finding"].startswith("StorageClass no-such-class does not exist")
    assert f"({STORAGE_CLASS})" in storage["fix"]  # what the cluster has instead
    assert [n for n, c in checks.items() if c["status"] != "ok"] == ["storage-class"]


def test_a_user_without_rights_is_told_which_are_denied_and_a_role_counts(
    doctor: Doctor, kubernetes: KubernetesCluster,
) -> None:
    user = f"nobody-{uuid.uuid4().hex[:6]}"
    kubeconfig = kubernetes.kubeconfig_for(user)
    doctor.create_namespace()  # for a Role in it

    checks = doctor.report(kubeconfig=kubeconfig, exit_code=1)
    rights = checks["permissions"]
    assert rights["status"] == "fail"
    allowed, needed = allowed_count(rights)
    assert allowed == 0 and needed > 50
    assert f"allowed in namespace {doctor.namespace} for {user};" in rights["finding"]
    assert "denied: " in rights["finding"]
    assert "get, list, create, update, patch, delete on secrets" in rights["finding"]
    assert "get, create, update, delete on leases.coordination.k8s.io" in rights["finding"]
    assert "as Role commander grants them" in rights["finding"]
    assert f"--user={user}" in rights["fix"] and f"-n {doctor.namespace}" in rights["fix"]
    # what this user may not read is not checked, rather than guessed
    assert checks["namespace"]["status"] == "warn"
    assert checks["namespace"]["finding"].startswith("not checked: ")
    assert checks["storage-class"]["finding"].startswith("not checked: ")

    # The ledger's rights, granted by a Role: ten more allowed, and no longer listed.
    kubernetes.kubectl("create", "role", "ledger", "-n", doctor.namespace,
                       "--verb=get,list,create,update,patch,delete", "--resource=secrets")
    kubernetes.kubectl("create", "role", "lock", "-n", doctor.namespace,
                       "--verb=get,create,update,delete", "--resource=leases.coordination.k8s.io")
    for role in ("ledger", "lock"):
        kubernetes.kubectl("create", "rolebinding", role, "-n", doctor.namespace,
                           f"--role={role}", f"--user={user}")
    rights = doctor.report(kubeconfig=kubeconfig, exit_code=1)["permissions"]
    assert allowed_count(rights) == (10, needed)
    assert "secrets" not in rights["finding"] and "leases" not in rights["finding"]
    assert "get, list, watch, create, patch, delete on configmaps, deployments.apps" \
        in rights["finding"]


def test_a_stopped_api_server_fails_with_its_url_and_the_rest_is_not_checked(
    doctor: Doctor, kubernetes: KubernetesCluster,
) -> None:
    kubernetes.stop_apiserver()
    try:
        checks = doctor.report(exit_code=1)
    finally:
        kubernetes.start_apiserver()
    server = checks["api-server"]
    assert server["status"] == "fail"
    assert server["finding"].startswith(
        f"cannot reach the Kubernetes API server at {kubernetes.server}: ")
    assert server["finding"].endswith("[Errno 111] Connection refused")
    assert "HTTPSConnection" not in server["finding"]  # urllib3's wrapping, left out
    assert "cluster-info" in server["fix"]
    assert checks["kubeconfig"]["status"] == "ok"
    for name in ("permissions", "storage-class", "namespace", "lock"):
        assert checks[name]["status"] == "warn", name
        assert checks[name]["finding"].startswith("not checked: "), name
    # what needs no API server still runs
    assert checks["registry"]["status"] == checks["bundle"]["status"] == "ok"


def test_a_registry_that_answers_and_one_on_a_closed_port(
    doctor: Doctor, registry: Registry,
) -> None:
    checks = doctor.report(config=doctor.config(
        extra=f"images: {{registry: '{registry.url}/heliostat'}}\n"), exit_code=0)
    assert checks["registry"]["finding"].startswith(
        f"{registry.url} answers from this host (registry/2.0)")

    closed = f"127.0.0.1:{free_port()}"
    checks = doctor.report(config=doctor.config(extra=f"images: {{registry: '{closed}'}}\n"),
                           exit_code=1)
    found = checks["registry"]
    assert found["status"] == "fail"
    assert found["finding"].startswith(f"the registry {closed} cannot be reached at "
                                       f"http://{closed}: ")
    assert "images.registry" in found["fix"]


def test_a_held_lock_is_a_warning_naming_its_holder(
    doctor: Doctor, kubernetes: KubernetesCluster,
) -> None:
    doctor.create_namespace()
    connection = connect(str(kubernetes.kubeconfig))
    store = SecretLedgerStore(connection.api, doctor.namespace, doctor.name)
    lease = store.acquire(Holder.this_process("upgrade"), ttl=120)
    try:
        checks = doctor.report(exit_code=0)  # a warning, not a failure
    finally:
        store.release(lease)
        connection.close()
    lock = checks["lock"]
    assert lock["status"] == "warn"
    assert lock["finding"].startswith("held by `upgrade` (pid ")
    assert "its lease runs out at" in lock["finding"]
    assert "wait for that command to finish" in lock["fix"]
    # a namespace made by someone else is a warning too
    assert checks["namespace"]["status"] == "warn"
    assert "was not made by heliostat" in checks["namespace"]["finding"]
    # taken and released by the store, untouched by doctor: free again
    assert doctor.report(exit_code=0)["lock"]["finding"].startswith("not held")


def test_a_kubeconfig_that_is_not_there(doctor: Doctor, tmp_path: Path) -> None:
    nowhere = tmp_path / "no-such.kubeconfig"
    checks = doctor.report("--bundle", str(tmp_path / "none.bundle"), kubeconfig=nowhere,
                           exit_code=1)
    kubeconfig = checks["kubeconfig"]
    assert kubeconfig["status"] == "fail"
    assert kubeconfig["finding"].startswith(f"no kubeconfig at {nowhere}")
    assert "--kubeconfig" in kubeconfig["fix"] and "KUBECONFIG" in kubeconfig["fix"]
    assert checks["api-server"]["status"] == "fail"
    assert checks["permissions"]["finding"].startswith("not checked: ")
    bundle = checks["bundle"]
    assert bundle["status"] == "fail"
    assert bundle["finding"] == f"there is no bundle at {tmp_path / 'none.bundle'}"
    assert "if the nodes pull the images from a registry" in bundle["fix"]
