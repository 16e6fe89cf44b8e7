"""The release ledger kept on Kubernetes, against a real API server: documents as Secrets of
the namespace, the lock as a Lease, the API server's refusals and absence as clear errors."""

from __future__ import annotations

import base64
import json
import math
import re
import subprocess
import threading
import time
import uuid

import pytest
from kubernetes.client import ApiClient

from heliostat.drivers.kubernetes_api import connect
from heliostat.drivers.kubernetes_ledger import MAX_DOCUMENT, SecretLedgerStore
from heliostat.ledger_lock import (
    Holder,
    Lease,
    LeaseLost,
    LedgerError,
    LockHeld,
    _process_identity,
)
from heliostat.ledger_store import LedgerCorrupt
from tests.infra.kubernetes_cluster import KubernetesCluster

PLATFORM = "acme"
SELECTOR = f"heliostat.io/platform={PLATFORM},heliostat.io/ledger-document=true"


@pytest.fixture
def store(api: ApiClient, namespace: str) -> SecretLedgerStore:
    return SecretLedgerStore(api, namespace, PLATFORM)


def get_json(kubernetes: KubernetesCluster, *args: str) -> dict:
    return json.loads(kubernetes.kubectl("get", *args, "-o", "json").stdout)


def ledger_secrets(kubernetes: KubernetesCluster, namespace: str) -> list[dict]:
    return get_json(kubernetes, "secrets", "-n", namespace, "-l", SELECTOR)["items"]


def lease_object(kubernetes: KubernetesCluster, namespace: str,
                 platform: str = PLATFORM) -> dict | None:
    result = kubernetes.kubectl("get", "lease", f"heliostat-{platform}-lock", "-n", namespace,
                                "-o", "json", check=False)
    if result.returncode != 0:
        assert "NotFound" in result.stderr, result.stderr
        return None
    return json.loads(result.stdout)


def other_holder(command: str = "upgrade") -> Holder:
    """A live holder of another host: never provably gone, waited for until it runs out."""
    return Holder(host="other-host", pid=1, command=command, started_at=time.time(),
                  process=None)


def wait_until_expired(lease: Lease) -> None:
    deadline = time.monotonic() + 30
    while time.time() <= lease.expires_at:
        assert time.monotonic() < deadline, "the lease never ran out"
        time.sleep(0.05)


def assert_clear(error: LedgerError) -> None:
    """A message for users: no traceback of the client library behind it."""
    assert error.__cause__ is None and error.__suppress_context__


# --- documents --------------------------------------------------------------------------


def test_documents_round_trip_as_labelled_secrets(kubernetes, namespace, store):
    second = bytes(range(256)) * 3  # not UTF-8: bytes are kept exactly
    first = b'{"number": 1}\n'
    store.write("revision-000002.json", second)
    store.write("revision-000001.json", first)
    assert store.read("revision-000001.json") == first
    assert store.read("revision-000002.json") == second
    assert store.names() == ["revision-000001.json", "revision-000002.json"]

    secrets = {s["metadata"]["name"]: s for s in ledger_secrets(kubernetes, namespace)}
    assert sorted(secrets) == [f"heliostat-ledger-{PLATFORM}-revision-000001.json",
                               f"heliostat-ledger-{PLATFORM}-revision-000002.json"]
    secret = secrets[f"heliostat-ledger-{PLATFORM}-revision-000002.json"]
    assert secret["type"] == "heliostat.io/ledger"
    assert secret["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "heliostat", "heliostat.io/platform": PLATFORM,
        "heliostat.io/ledger-document": "true"}
    assert secret["metadata"]["annotations"]["heliostat.io/document"] == "revision-000002.json"
    assert base64.b64decode(secret["data"]["document"]) == second

    store.remove("revision-000001.json")
    assert store.read("revision-000001.json") is None
    assert store.names() == ["revision-000002.json"]
    store.remove("revision-000001.json")  # already gone: no error
    assert [s["metadata"]["name"] for s in ledger_secrets(kubernetes, namespace)] == [
        f"heliostat-ledger-{PLATFORM}-revision-000002.json"]


def test_an_empty_document_reads_back_empty_not_missing(store):
    store.write("empty.json", b"")
    assert store.read("empty.json") == b""
    assert store.names() == ["empty.json"]


def test_a_rewrite_replaces_the_one_secret(kubernetes, namespace, store):
    store.write("revision-000001.json", b"pending")
    before = ledger_secrets(kubernetes, namespace)[0]["metadata"]
    store.write("revision-000001.json", b"deployed")
    assert store.read("revision-000001.json") == b"deployed"
    secrets = ledger_secrets(kubernetes, namespace)
    assert len(secrets) == 1
    assert secrets[0]["metadata"]["uid"] == before["uid"]  # replaced, not deleted and made anew
    assert secrets[0]["metadata"]["resourceVersion"] != before["resourceVersion"]


def test_concurrent_writes_of_one_document_all_land_whole(kubernetes, namespace):
    """Writers racing on one Secret: each write is retried past the others' conflicts (each
    conflict is another's write landing, so 4 writers need at most 4 attempts), and what
    stays is one writer's bytes, whole."""
    writers = 4
    start = threading.Barrier(writers)
    errors: list[BaseException] = []
    payloads = [bytes([n]) * 50_000 for n in range(writers)]

    def write(n: int) -> None:
        connection = connect(str(kubernetes.kubeconfig))
        try:
            store = SecretLedgerStore(connection.api, namespace, PLATFORM)
            start.wait()
            store.write("status.json", payloads[n])
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    connection = connect(str(kubernetes.kubeconfig))
    try:
        assert SecretLedgerStore(connection.api, namespace, PLATFORM).read(
            "status.json") in payloads
    finally:
        connection.close()
    assert len(ledger_secrets(kubernetes, namespace)) == 1


def test_missing_documents_read_as_none_and_other_platforms_are_not_listed(api, namespace,
                                                                           store):
    assert store.read("revision-000001.json") is None
    assert store.names() == []
    other = SecretLedgerStore(api, namespace, "other")
    other.write("revision-000001.json", b"other's")
    assert store.read("revision-000001.json") is None
    assert store.names() == []
    assert other.names() == ["revision-000001.json"]


def test_a_secret_without_the_document_key_is_reported_not_read_as_empty(kubernetes,
                                                                         namespace, store):
    store.write("revision-000001.json", b"x")
    kubernetes.kubectl("patch", "secret", f"heliostat-ledger-{PLATFORM}-revision-000001.json",
                       "-n", namespace, "--type=json",
                       "-p", '[{"op": "remove", "path": "/data/document"}]')
    with pytest.raises(LedgerCorrupt, match="edited by hand"):
        store.read("revision-000001.json")


@pytest.mark.parametrize("name", ["Revision-000001.json", "../secret", "a_b.json", "",
                                  ".hidden", "trailing-", "a..json", "a b", "x" * 250])
def test_names_that_are_no_valid_secret_names_are_refused(kubernetes, namespace, store, name):
    with pytest.raises(ValueError, match="not a valid ledger name"):
        store.write(name, b"x")
    with pytest.raises(ValueError, match="not a valid ledger name"):
        store.read(name)
    assert ledger_secrets(kubernetes, namespace) == []


def test_the_longest_name_accepted_is_one_the_api_server_accepts(store):
    longest = "x" * (253 - len(f"heliostat-ledger-{PLATFORM}-"))
    store.write(longest, b"long")
    assert store.read(longest) == b"long"
    with pytest.raises(ValueError):
        store.write(longest + "x", b"too long")


def test_a_document_over_the_secret_limit_is_refused_before_anything_is_sent(kubernetes,
                                                                            namespace, store):
    store.write("revision-000001.json", b"kept")
    with pytest.raises(LedgerError, match=r"more than the 1048576 a Kubernetes Secret holds"):
        store.write("revision-000001.json", b"x" * (MAX_DOCUMENT + 1))
    with pytest.raises(LedgerError):
        store.write("revision-000002.json", b"x" * (MAX_DOCUMENT + 1))
    assert store.read("revision-000001.json") == b"kept"
    assert store.names() == ["revision-000001.json"]
    # The limit is the API server's own: a document of exactly that size is accepted.
    store.write("revision-000002.json", b"y" * MAX_DOCUMENT)
    assert store.read("revision-000002.json") == b"y" * MAX_DOCUMENT


def test_data_dumps_are_refused_clearly_not_faked(kubernetes, namespace, store):
    with pytest.raises(LedgerError, match="data backups are not kept on Kubernetes yet"), \
            store.write_blob("backup-000002-postgres.dump") as out:
        out.write(b"dump")
    with pytest.raises(LedgerError, match="data backups are not kept on Kubernetes yet"), \
            store.open_blob("backup-000002-postgres.dump"):
        pass
    assert store.names() == []
    assert get_json(kubernetes, "secrets", "-n", namespace)["items"] == []


# --- the lock ---------------------------------------------------------------------------


def test_acquire_renew_release(kubernetes, namespace, store):
    lease = store.acquire(Holder.this_process("install"), ttl=29.5)
    found = lease_object(kubernetes, namespace)
    assert found is not None
    assert found["spec"]["holderIdentity"] == lease.token
    assert found["spec"]["leaseDurationSeconds"] == math.ceil(29.5)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", found["spec"]["renewTime"])
    assert json.loads(found["metadata"]["annotations"]["heliostat.io/lease"]) == lease.to_json()

    renewed = store.renew(lease, ttl=120)
    assert renewed.token == lease.token and renewed.expires_at > lease.expires_at
    after = lease_object(kubernetes, namespace)
    assert after["spec"]["leaseDurationSeconds"] == 120
    assert after["spec"]["acquireTime"] == found["spec"]["acquireTime"]
    assert Lease.from_json(json.loads(after["metadata"]["annotations"]["heliostat.io/lease"])
                           ) == renewed

    store.release(renewed)
    assert lease_object(kubernetes, namespace) is None
    with pytest.raises(LeaseLost, match="it was released"):
        store.renew(renewed, ttl=30)
    again = store.acquire(Holder.this_process("upgrade"), ttl=30)
    assert again.token != lease.token


def test_a_second_holder_is_told_who_holds_the_lock(api, namespace, store):
    first = store.acquire(other_holder("upgrade"), ttl=600)
    second = SecretLedgerStore(api, namespace, PLATFORM)
    with pytest.raises(LockHeld) as held:
        second.acquire(Holder.this_process("install"), ttl=30)
    assert first.holder.describe() in str(held.value)
    assert f"Secrets of namespace {namespace}" in str(held.value)
    assert held.value.lease == first
    # Another platform's lock in the same namespace is another lock.
    SecretLedgerStore(api, namespace, "other").acquire(Holder.this_process("install"), ttl=30)


def test_an_expired_lease_is_taken_over_and_its_holder_finds_out(kubernetes, namespace, store):
    first = store.acquire(other_holder("upgrade"), ttl=1)
    with pytest.raises(LockHeld):
        store.acquire(Holder.this_process("install"), ttl=60)
    wait_until_expired(first)
    second = store.acquire(Holder.this_process("install"), ttl=60)
    assert lease_object(kubernetes, namespace)["spec"]["holderIdentity"] == second.token

    with pytest.raises(LeaseLost, match=r"taken over by `install`") as lost:
        store.renew(first, ttl=60)
    assert lost.value.current == second
    store.release(first)  # not ours any more: left alone
    assert lease_object(kubernetes, namespace)["spec"]["holderIdentity"] == second.token
    assert store.renew(second, ttl=60).token == second.token
    with pytest.raises(LockHeld, match=r"`install`"):
        store.acquire(other_holder("upgrade"), ttl=60)


def test_the_lease_of_a_holder_proven_gone_is_taken_over_at_once(store):
    child = subprocess.Popen(["sleep", "60"])
    try:
        gone = Holder.this_process("upgrade")
        gone = Holder(gone.host, child.pid, "upgrade", gone.started_at,
                      _process_identity(child.pid))
        assert gone.process is not None
        store.acquire(gone, ttl=3600)
        with pytest.raises(LockHeld):
            store.acquire(Holder.this_process("install"), ttl=60)
    finally:
        child.kill()
        child.wait()
    assert gone.is_gone()
    assert store.acquire(Holder.this_process("install"), ttl=60).holder.command == "install"


def _race(kubernetes: KubernetesCluster, namespace: str, platform: str,
          racers: int) -> list[Lease | LockHeld]:
    """`racers` threads, each with its own connection, acquiring at once."""
    start = threading.Barrier(racers)
    outcomes: list[Lease | LockHeld] = []
    failures: list[BaseException] = []

    def race() -> None:
        connection = connect(str(kubernetes.kubeconfig))
        try:
            racer = SecretLedgerStore(connection.api, namespace, platform)
            start.wait()
            outcomes.append(racer.acquire(Holder.this_process("race"), ttl=60))
        except LockHeld as held:
            outcomes.append(held)
        except BaseException as exc:
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=race) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(outcomes) == racers
    return outcomes


@pytest.mark.parametrize("round_", range(3))
def test_of_racers_for_a_free_lock_exactly_one_wins(kubernetes, namespace, round_):
    outcomes = _race(kubernetes, namespace, PLATFORM, racers=8)
    winners = [o for o in outcomes if isinstance(o, Lease)]
    assert len(winners) == 1
    assert lease_object(kubernetes, namespace)["spec"]["holderIdentity"] == winners[0].token
    for held in outcomes:
        if isinstance(held, LockHeld):
            assert held.lease == winners[0]


def test_of_racers_for_an_expired_lock_exactly_one_takes_it_over(kubernetes, namespace, store):
    expired = store.acquire(other_holder("upgrade"), ttl=1)
    wait_until_expired(expired)
    outcomes = _race(kubernetes, namespace, PLATFORM, racers=8)
    winners = [o for o in outcomes if isinstance(o, Lease)]
    assert len(winners) == 1
    found = lease_object(kubernetes, namespace)
    assert found["spec"]["holderIdentity"] == winners[0].token
    assert found["spec"]["leaseTransitions"] == 1


def test_a_hand_edited_lease_is_reported_not_ignored(kubernetes, namespace, store):
    store.acquire(other_holder(), ttl=600)
    kubernetes.kubectl("annotate", "--overwrite", "lease", f"heliostat-{PLATFORM}-lock",
                       "-n", namespace, "heliostat.io/lease={not json")
    with pytest.raises(LedgerError, match=r"Lease .*heliostat-acme-lock.*edited by hand"):
        store.acquire(Holder.this_process("install"), ttl=60)
    kubernetes.kubectl("annotate", "lease", f"heliostat-{PLATFORM}-lock", "-n", namespace,
                       "heliostat.io/lease-")
    with pytest.raises(LedgerError, match="edited by hand"):
        store.acquire(Holder.this_process("install"), ttl=60)


# --- the API server refusing, or gone ---------------------------------------------------


def test_a_user_without_rights_gets_a_clear_error(kubernetes, namespace):
    connection = connect(str(kubernetes.kubeconfig_for(f"nobody-{uuid.uuid4().hex[:6]}")))
    try:
        store = SecretLedgerStore(connection.api, namespace, PLATFORM)
        with pytest.raises(LedgerError, match=rf"could not write Secret {namespace}/"
                                              rf"heliostat-ledger-acme-revision-000001\.json: "
                                              r"the API server answered 403: .*forbidden.*"
                                              r"RBAC") as written:
            store.write("revision-000001.json", b"x")
        assert_clear(written.value)
        with pytest.raises(LedgerError, match=r"could not take the lock .*403.*forbidden") \
                as acquired:
            store.acquire(Holder.this_process("install"), ttl=30)
        assert_clear(acquired.value)
        with pytest.raises(LedgerError, match="403"):
            store.names()
    finally:
        connection.close()
    assert ledger_secrets(kubernetes, namespace) == []
    assert lease_object(kubernetes, namespace) is None


def test_a_missing_namespace_is_named(api):
    store = SecretLedgerStore(api, f"absent-{uuid.uuid4().hex[:8]}", PLATFORM)
    assert store.read("revision-000001.json") is None
    with pytest.raises(LedgerError, match=rf'namespaces "{store.namespace}" not found'):
        store.write("revision-000001.json", b"x")
    with pytest.raises(LedgerError, match=rf'namespaces "{store.namespace}" not found'):
        store.acquire(Holder.this_process("install"), ttl=30)


def test_a_stopped_api_server_is_a_clear_error(kubernetes, namespace, store):
    store.write("revision-000001.json", b"kept")
    kubernetes.stop_apiserver()
    try:
        with pytest.raises(LedgerError, match=r"could not write Secret .*: cannot reach the "
                                              rf"API server at {re.escape(kubernetes.server)}"
                                              r".*Connection refused") as written:
            store.write("revision-000001.json", b"new")
        assert_clear(written.value)
        with pytest.raises(LedgerError, match="cannot reach the API server"):
            store.acquire(Holder.this_process("install"), ttl=30)
    finally:
        kubernetes.start_apiserver()
    connection = connect(str(kubernetes.kubeconfig))
    try:
        assert SecretLedgerStore(connection.api, namespace, PLATFORM).read(
            "revision-000001.json") == b"kept"
    finally:
        connection.close()
