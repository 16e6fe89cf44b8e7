"""`heliostat doctor` on Kubernetes without a cluster: the version rule, the rights the
platform needs and how their review reads, the volume claims, the namespace and the lock
as read from their objects, and a kubeconfig that is not there."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import urllib3
import yaml

from heliostat.config import load_config
from heliostat.doctor import MIN_KUBERNETES, NEWEST_TESTED_KUBERNETES, kubernetes_version_rule
from heliostat.drivers.kubernetes_doctor import (
    RBAC,
    KubernetesDoctor,
    NeededRights,
    Permission,
    connection_error,
    grouped,
    lock_finding,
    namespace_finding,
    permissions_rule,
    role_grant,
    volume_claims,
)
from heliostat.drivers.kubernetes_ledger import LEASE_ANNOTATION
from heliostat.ledger_lock import Holder, Lease
from heliostat.target import open_target

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests/unit/heliostat/golden/kubernetes"
SERVER = "https://10.0.0.1:6443"
NS = "acme-data"


# -- the version --

@pytest.mark.parametrize(("version", "status"), [
    ("v1.28.15", "fail"), ("v1.29.0", "ok"), ("v1.30.4-eks-a1b2c3", "ok"), ("v1.37.2", "ok"),
    ("v1.38.0", "warn"), ("v2.0.0", "warn"), ("unknown", "warn"),
])
def test_the_kubernetes_minor_decides_the_api_server_check(version, status):
    found = kubernetes_version_rule(version, SERVER)
    assert found.status == status
    assert found.text.startswith(f"Kubernetes {version} at {SERVER}")
    assert bool(found.fix) is (status != "ok")


def test_the_supported_range_is_what_the_findings_name():
    assert MIN_KUBERNETES < NEWEST_TESTED_KUBERNETES
    assert "needs Kubernetes 1.29 or later" in kubernetes_version_rule("v1.27.1", SERVER).text
    assert "newer than 1.37" in kubernetes_version_rule("v1.38.1", SERVER).text


# -- rights --

def rights(verbs: tuple[str, ...], resource: str, group: str = "") -> list[Permission]:
    return [Permission(v, group, resource, NS) for v in verbs]


SECRETS = rights(("get", "list", "create", "update", "patch", "delete"), "secrets")
LEASES = rights(("get", "create", "update", "delete"), "leases", "coordination.k8s.io")
PURGE = (Permission("delete", "", "namespaces", NS, NS),)


def test_every_right_allowed():
    needed = NeededRights((*SECRETS, *LEASES), PURGE)
    found = permissions_rule(needed, dict.fromkeys(needed.all(), True), NS, "alice")
    assert (found.status, found.text) == ("ok", f"10 of 10 allowed in namespace {NS} for alice")


def test_denied_rights_are_listed_by_verbs_with_the_grant_that_fixes_them():
    needed = NeededRights((*SECRETS, *LEASES, *rights(("get", "list"), "pods"),
                           *rights(("get", "list"), "events")), PURGE)
    allowed = dict.fromkeys(needed.all(), True)
    for p in (*LEASES, *rights(("get", "list"), "pods"), *rights(("get", "list"), "events")):
        allowed[p] = False
    found = permissions_rule(needed, allowed, NS, "alice")
    assert found.status == "fail"
    assert found.text == (f"6 of 14 allowed in namespace {NS} for alice; denied: "
                          "get, create, update, delete on leases.coordination.k8s.io; "
                          "get, list on pods, events")
    assert f"-n {NS}" in found.fix and "--user=alice" in found.fix
    assert "create namespace" not in found.fix


def test_creating_the_namespace_takes_a_cluster_role_or_the_namespace_made_first():
    create = Permission("create", "", "namespaces", NS, NS)
    needed = NeededRights((*SECRETS, create), PURGE)
    allowed = {**dict.fromkeys(needed.all(), True), create: False}
    found = permissions_rule(needed, allowed, NS)
    assert found.text.endswith(f"denied: create on namespace {NS}")
    assert f"kubectl create namespace {NS}" in found.fix and "--user=USER" in found.fix


def test_what_only_a_purge_needs_is_a_warning():
    needed = NeededRights(tuple(SECRETS), PURGE)
    found = permissions_rule(needed, {**dict.fromkeys(SECRETS, True), PURGE[0]: False}, NS)
    assert found.status == "warn"
    assert "delete on namespace acme-data, which only `uninstall --purge` needs" in found.text


def commander_role() -> dict:
    return yaml.safe_load((GOLDEN / "role-commander.yaml").read_text())


def test_a_rendered_role_grants_the_cross_product_of_its_rules():
    grant = role_grant(commander_role(), NS)
    assert grant.name == "commander"
    assert len(grant.grants) == 5 * 9 * 7  # groups x resources x verbs, as RBAC reads them
    assert Permission("watch", "apps", "deployments", NS) in grant.grants
    assert grant.instead == (Permission("escalate", RBAC, "roles", NS),
                             Permission("bind", RBAC, "roles", NS, "commander"))


def test_a_roles_grants_count_unless_the_user_may_escalate_and_bind():
    grant = role_grant(commander_role(), NS)
    needed = NeededRights(tuple(SECRETS), PURGE, (grant,))
    allowed = {**dict.fromkeys(needed.all(), True),
               Permission("watch", "", "pods", NS): False, grant.instead[0]: False}
    found = permissions_rule(needed, allowed, NS)
    assert found.status == "fail"
    counted = len(set(SECRETS) | set(grant.grants))
    assert found.text.startswith(f"{counted - 1} of {counted} allowed")
    assert found.text.endswith("denied, as Role commander grants them, and RBAC lets only who "
                               "holds them (or may escalate and bind roles) create it: "
                               "watch on pods")
    # with escalate and bind, holding the Role's rights does not matter
    allowed[grant.instead[0]] = True
    found = permissions_rule(needed, allowed, NS)
    assert found.text == f"6 of 6 allowed in namespace {NS}"


def test_with_the_drivers_own_rights_denied_a_roles_are_only_counted():
    grant = role_grant(commander_role(), NS)
    needed = NeededRights(tuple(SECRETS), PURGE, (grant,))
    found = permissions_rule(needed, dict.fromkeys(needed.all(), False), NS)
    assert "denied: get, list, create, update, patch, delete on secrets; and " in found.text
    assert "more, as Role commander grants them" in found.text


def test_grouped_keeps_long_lists_short():
    many = [Permission("get", "", f"thing{i}s", NS) for i in range(15)]
    assert grouped(many, at_most=3) == "get on thing0s, thing1s, thing2s and 12 more"


# -- objects --

def test_volume_claims_of_statefulsets_count_each_replica():
    manifests = {p.name: p.read_text() for p in GOLDEN.glob("statefulset-*.yaml")}
    claims = {c.owner: c for c in volume_claims(manifests)}
    kafka = claims["statefulset/kafka"]
    assert (kafka.storage_class, kafka.size, kafka.count) == ("fast-ssd", 200 << 30, 3)
    assert volume_claims({p.name: p.read_text() for p in GOLDEN.glob("deployment-*")}) == []


def test_a_claim_without_a_class_wants_the_default():
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "x"},
             "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    [found] = volume_claims({"pvc.yaml": yaml.safe_dump(claim)})
    assert (found.storage_class, found.size, found.count) == ("", 1 << 30, 1)


def namespace(labels: dict[str, str], phase: str = "Active") -> dict:
    return {"metadata": {"name": NS, "labels": labels}, "status": {"phase": phase}}


OURS = {"app.kubernetes.io/managed-by": "heliostat", "app.kubernetes.io/part-of": "acme"}


@pytest.mark.parametrize(("found", "status", "text"), [
    (None, "ok", "acme-data does not exist yet; install creates it"),
    (namespace(OURS), "ok", "acme-data exists, made by heliostat for platform acme"),
    (namespace({**OURS, "app.kubernetes.io/part-of": "other"}), "warn",
     "acme-data exists and is platform other's"),
    (namespace({"team": "data"}), "warn", "acme-data exists and was not made by heliostat"),
    (namespace(OURS, "Terminating"), "fail", "acme-data is being deleted"),
])
def test_whose_namespace_it_is(found, status, text):
    finding = namespace_finding(found, NS, "acme")
    assert finding.status == status
    assert finding.text.startswith(text)


def lease_object(lease: Lease | None, holder_identity: str | None = None) -> dict:
    annotations = {LEASE_ANNOTATION: json.dumps(lease.to_json())} if lease else {}
    identity = holder_identity if holder_identity is not None else (lease.token if lease else "")
    return {"metadata": {"name": "heliostat-acme-lock", "annotations": annotations},
            "spec": {"holderIdentity": identity}}


def test_a_lock_nobody_holds():
    assert lock_finding(None, "heliostat-acme-lock", NS).text == (
        f"not held (no Lease {NS}/heliostat-acme-lock)")
    assert lock_finding(lease_object(None), "heliostat-acme-lock", NS).status == "ok"


def test_a_live_lease_is_a_warning_naming_its_holder():
    lease = Lease.grant(Holder.this_process("install"), ttl=60)
    found = lock_finding(lease_object(lease), "heliostat-acme-lock", NS)
    assert found.status == "warn"
    assert found.text.startswith("held by `install` (pid ")


def test_a_lease_that_ran_out_is_not_held():
    lease = Lease(Holder.this_process("install"), "t0ken", time.time() - 5)
    found = lock_finding(lease_object(lease), "heliostat-acme-lock", NS)
    assert found.status == "ok" and "ran out at" in found.text


def test_a_lease_heliostat_cannot_read_fails_with_how_to_remove_it():
    lease = Lease.grant(Holder.this_process("install"), ttl=60)
    for found in (lock_finding(lease_object(None, "someone"), "heliostat-acme-lock", NS),
                  lock_finding(lease_object(lease, "another"), "heliostat-acme-lock", NS)):
        assert found.status == "fail"
        assert f"kubectl delete lease heliostat-acme-lock -n {NS}" in found.fix


def test_connection_errors_lose_urllib3s_wrapping():
    with pytest.raises(urllib3.exceptions.HTTPError) as caught:
        urllib3.PoolManager(retries=0).request("GET", "https://127.0.0.1:1/version")
    assert connection_error(caught.value) == (
        "Failed to establish a new connection: [Errno 111] Connection refused")


# -- the target and the command --

def test_a_kubernetes_target_gets_the_kubernetes_checks():
    target = open_target(load_config(ROOT / "examples/kubernetes.yaml"))
    assert isinstance(target.preflight(), KubernetesDoctor)
    assert target.preflight().where == "this cluster"


def test_a_kubeconfig_that_is_not_there_is_a_report(tmp_path):
    nowhere = tmp_path / "nowhere.kubeconfig"
    config = tmp_path / "platform.yaml"
    config.write_text("apiVersion: heliostat/v1\nname: acme\nprofile: kubernetes\n")
    result = subprocess.run(
        [sys.executable, "-m", "heliostat", "doctor", "-f", str(config), "--kubeconfig",
         str(nowhere), "--output", "json"],
        capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL, timeout=120,
        env={"PYTHONPATH": str(ROOT / "installer")})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["kubeconfig"]["status"] == "fail"
    assert checks["kubeconfig"]["finding"].startswith(f"no kubeconfig at {nowhere}")
    assert checks["namespace"]["finding"].startswith("not checked: ")
