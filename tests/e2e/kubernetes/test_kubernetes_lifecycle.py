"""The whole platform on a real Kubernetes control plane (kwok's nodes run the pods): install,
no-op, diff, upgrade, automatic and manual rollback, pruning, a conflict with another field
manager, two applies at once, a killed installer, uninstall — with the same verbs, output
and ledger as on Compose. One installed platform is shared by the tests of this file, in
order; each leaves it deployed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.infra.compose_platforms import heliostat_env
from tests.infra.kubernetes_cluster import STORAGE_CLASS, KubernetesCluster

REPOSITORY = Path(__file__).resolve().parents[3]


class KubePlatform:
    """The default platform in a namespace of its own, and `heliostat` on it."""

    def __init__(self, cluster: KubernetesCluster, directory: Path) -> None:
        self.cluster = cluster
        self.name = f"k{uuid.uuid4().hex[:8]}"
        self.namespace = self.name
        self.directory = directory
        self.config = self.write_config()

    def write_config(self, extra: str = "", file: str = "platform.yaml") -> Path:
        path = self.directory / file
        path.write_text(textwrap.dedent(f"""\
            apiVersion: heliostat/v1
            name: {self.name}
            profile: kubernetes
            target:
              kubernetes: {{namespace: {self.namespace}, storage_class: {STORAGE_CLASS}}}
            """) + textwrap.dedent(extra))
        return path

    def command(self, *args: str, config: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "heliostat", *args, "-f", str(config or self.config),
                "--kubeconfig", str(self.cluster.kubeconfig)]

    def run(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args, config=config), capture_output=True,
                              text=True, timeout=600, cwd=REPOSITORY, env=heliostat_env(),
                              stdin=subprocess.DEVNULL)

    def start(self, *args: str, config: Path | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args, config=config), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=REPOSITORY,
                                env=heliostat_env(), stdin=subprocess.DEVNULL)

    def get(self, *what: str) -> dict:
        return yaml.safe_load(self.cluster.kubectl("get", *what, "-n", self.namespace,
                                                   "-o", "yaml").stdout)

    def history(self) -> list[dict]:
        result = self.run("history", "--output", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


def wait_until(what: str, check: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f}s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def platform(kubernetes: KubernetesCluster, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[KubePlatform]:
    installed = KubePlatform(kubernetes, tmp_path_factory.mktemp("kubernetes-platform"))
    result = installed.run("install")
    assert result.returncode == 0, result.stderr
    installed.install_output = result.stdout  # type: ignore[attr-defined]
    yield installed
    kubernetes.kubectl("delete", "namespace", installed.namespace, "--wait=false",
                       check=False)


def test_install_rolls_out_every_workload_with_its_secrets_and_ledger_in_the_namespace(
    platform: KubePlatform,
) -> None:
    assert f"platform {platform.name}: revision 1 deployed" in platform.install_output
    deployments = platform.get("deployments")["items"]
    assert {d["metadata"]["name"] for d in deployments} >= {"event-api", "pilot", "commander"}
    for workload in deployments + platform.get("statefulsets")["items"]:
        wanted = workload["spec"]["replicas"]
        assert workload["status"].get("readyReplicas") == wanted, workload["metadata"]["name"]
        annotations = workload["metadata"]["annotations"]
        assert annotations["heliostat.io/revision"] == "1"
    # Each workload came after its ServiceAccount, ConfigMaps and Services: no pod refused.
    refused = platform.get("events", "--field-selector", "reason=FailedCreate")["items"]
    assert refused == [], [event["message"] for event in refused]
    # The migration's gate passed on its pod's success; the Job controller, which batches
    # pod updates, then writes Complete.
    job = platform.get("job", "clickstream-migrate")
    pods = platform.get("pods", "-l",
                        f"batch.kubernetes.io/controller-uid={job['metadata']['uid']}")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]
    platform.cluster.kubectl("wait", "--for=condition=complete", "job/clickstream-migrate",
                             "-n", platform.namespace, "--timeout=30s")
    secrets = {s["metadata"]["name"]: s for s in platform.get("secrets")["items"]}
    assert secrets["pilot-admin-password"]["type"] == "Opaque"
    assert set(secrets["pilot-admin-password"]["data"]) == {"value"}
    ledger = secrets[f"heliostat-ledger-{platform.name}-revision-000001.json"]
    assert ledger["type"] == "heliostat.io/ledger"
    # the ledger keeps hashes of the secrets, never their values
    password = platform.run("status", "--show-secret", "pilot-admin-password").stdout.strip()
    assert len(password) >= 20
    revision = platform.history()[0]
    assert revision["status"] == "deployed" and revision["origin"] == "cli"
    recorded = platform.cluster.kubectl(
        "get", "secret", f"heliostat-ledger-{platform.name}-revision-000001.json", "-n",
        platform.namespace, "-o", "jsonpath={.data.document}").stdout
    import base64
    assert password not in base64.b64decode(recorded).decode()


def test_applying_the_same_config_again_changes_nothing(platform: KubePlatform) -> None:
    diff = platform.run("diff")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert diff.stdout.startswith("No changes:")
    again = platform.run("upgrade")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    status = json.loads(platform.run("status", "--output", "json").stdout)
    rows = {row["service"]: row for row in status["services"]}
    assert rows["event-api"]["ready"] == rows["event-api"]["desired"] == 2
    assert {row["health"] for row in rows.values()} == {"healthy"}


def test_an_upgrade_changes_exactly_what_changed(platform: KubePlatform) -> None:
    bigger = platform.write_config("modules:\n  clickstream: {event_api: {replicas: 3}}\n",
                                   file="bigger.yaml")
    diff = platform.run("diff", config=bigger)
    assert diff.returncode == 1
    assert "~ update  deployment/event-api  (spec.replicas)" in diff.stdout
    upgraded = platform.run("upgrade", config=bigger)
    assert upgraded.returncode == 0, upgraded.stderr
    assert platform.get("deployment", "event-api")["status"]["readyReplicas"] == 3
    assert platform.run("diff", config=bigger).returncode == 0
    assert [r["status"] for r in platform.history()][-2:] == ["superseded", "deployed"]
    back = platform.run("upgrade")
    assert back.returncode == 0, back.stderr


def test_a_rollout_that_never_gets_ready_is_rolled_back_with_the_reason(
    platform: KubePlatform,
) -> None:
    broken = platform.write_config('images: {registry: "never-starts.invalid:5000"}\n',
                                   file="broken.yaml")
    result = platform.run("upgrade", config=broken)
    assert result.returncode == 1
    assert "ImagePullBackOff" in result.stderr
    assert "never-starts.invalid:5000/heliostat/" in result.stderr
    assert "rolled back to revision" in result.stderr
    last = platform.history()[-1]
    assert last["status"] == "rolled-back" and "ImagePullBackOff" in last["reason"]
    for workload in platform.get("deployments")["items"]:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert "never-starts" not in container["image"]
    assert platform.run("diff").returncode == 0  # back where it was


def test_rollback_applies_an_earlier_revision_as_a_new_one(platform: KubePlatform) -> None:
    first = platform.history()[0]["revision"]
    bigger = platform.write_config("modules:\n  clickstream: {event_api: {replicas: 3}}\n",
                                   file="bigger.yaml")
    assert platform.run("upgrade", config=bigger).returncode == 0
    rolled = platform.run("rollback", str(first))
    assert rolled.returncode == 0, rolled.stderr
    assert platform.get("deployment", "event-api")["spec"]["replicas"] == 2
    assert platform.history()[-1]["description"] == f"rollback to {first}"


def test_objects_no_longer_rendered_are_pruned_and_nothing_else(platform: KubePlatform) -> None:
    platform.cluster.kubectl("create", "configmap", "not-heliostats", "--from-literal=a=1",
                             "-n", platform.namespace)
    smaller = platform.write_config(
        "modules:\n  pilot: {enabled: false}\n  commander: {enabled: false}\n",
        file="smaller.yaml")
    result = platform.run("upgrade", config=smaller)
    assert result.returncode == 0, result.stderr
    names = {d["metadata"]["name"] for d in platform.get("deployments")["items"]}
    assert "pilot" not in names and "commander" not in names and "event-api" in names
    assert not [s for s in platform.get("serviceaccounts")["items"]
                if s["metadata"]["name"] == "commander"]
    assert platform.get("configmap", "not-heliostats")["data"] == {"a": "1"}
    restored = platform.run("upgrade")
    assert restored.returncode == 0, restored.stderr
    assert "pilot" in {d["metadata"]["name"] for d in platform.get("deployments")["items"]}


def test_a_field_another_manager_set_is_a_conflict_unless_forced(
    platform: KubePlatform,
) -> None:
    platform.cluster.kubectl("patch", "deployment", "event-api", "-n", platform.namespace,
                             "--type=merge", "-p", '{"spec":{"replicas":5}}',
                             "--field-manager=ops-team")
    refused = platform.run("upgrade")
    assert refused.returncode == 1
    assert 'conflict with "ops-team"' in refused.stderr and ".spec.replicas" in refused.stderr
    assert "--force-conflicts" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert platform.get("deployment", "event-api")["spec"]["replicas"] == 5
    forced = platform.run("upgrade", "--force-conflicts")
    assert forced.returncode == 0, forced.stderr
    assert platform.get("deployment", "event-api")["spec"]["replicas"] == 2
    assert platform.run("diff").returncode == 0


def _lease(platform: KubePlatform) -> dict | None:
    found = platform.cluster.kubectl("get", "lease", f"heliostat-{platform.name}-lock", "-n",
                                     platform.namespace, "-o", "yaml", check=False)
    return yaml.safe_load(found.stdout) if found.returncode == 0 else None


def test_a_second_apply_is_refused_while_the_first_holds_the_lease(
    platform: KubePlatform,
) -> None:
    moved = platform.write_config('images: {registry: "registry.example:5000"}\n',
                                  file="moved.yaml")
    first = platform.start("upgrade", config=moved)
    try:
        wait_until("the first upgrade takes the lease", lambda: _lease(platform))
        first.send_signal(signal.SIGSTOP)  # holds the lease, applies nothing meanwhile
        second = platform.run("upgrade")
        assert second.returncode == 1
        assert "another heliostat is changing this platform" in second.stderr
        assert f"(pid {first.pid} " in second.stderr
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert platform.run("upgrade").returncode == 0


def test_an_installer_killed_mid_apply_is_resumed_by_the_next_command(
    platform: KubePlatform,
) -> None:
    moved = platform.write_config('images: {registry: "registry.example:5000"}\n',
                                  file="moved.yaml")
    killed = platform.start("upgrade", config=moved)
    wait_until("the upgrade records its revision as pending",
               lambda: any(r["status"] == "pending" for r in platform.history()))
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    pending = [r for r in platform.history() if r["status"] == "pending"]
    assert len(pending) == 1
    resumed = platform.run("upgrade", config=moved)
    assert resumed.returncode == 0, resumed.stderr
    assert f"interrupted revision {pending[0]['revision']}" in resumed.stdout
    assert not [r for r in platform.history() if r["status"] == "pending"]
    images = {c["image"] for d in platform.get("deployments")["items"]
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert all(image.startswith("registry.example:5000/") for image in images), images


def test_uninstall_keeps_claims_secrets_and_history_and_purge_removes_the_namespace(
    platform: KubePlatform,
) -> None:
    removed = platform.run("uninstall", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert not platform.get("deployments")["items"]
    assert not platform.get("statefulsets")["items"]
    assert not platform.get("pods")["items"]
    claims = platform.get("pvc")["items"]
    assert "data-postgres-0" in {c["metadata"]["name"] for c in claims}
    assert platform.history()[-1]["description"] == "uninstall"
    assert platform.run("status", "--show-secret", "pilot-admin-password").returncode == 0
    purged = platform.run("uninstall", "--yes", "--purge")
    assert purged.returncode == 0, purged.stderr
    wait_until("the namespace is gone", lambda: platform.cluster.kubectl(
        "get", "namespace", platform.namespace, check=False).returncode != 0, timeout=120)
