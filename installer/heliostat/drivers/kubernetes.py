"""The kubernetes driver: one rendered Kubernetes object is one object of the plan.

- `desired_objects` asks the API server, by a server-side apply dry-run, what each rendered
  object would be, and keeps the fields heliostat's field manager would own: values are
  then in the server's form (defaults, `500m` for `0.5`), so they compare with what
  `observe` reads back, and a change someone made to a field heliostat owns shows in the
  plan (or as a conflict, reported unless --force-conflicts).
- `observe` reads the objects listed in the platform's inventory, a ledger document that
  names every object heliostat applied: nothing heliostat did not create is ever deleted.
- `apply` is a server-side apply as field manager `heliostat`; `wait` follows the rollout
  as `kubectl rollout status` does.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import yaml

from heliostat.driver import (
    CommandResult,
    DesiredObject,
    Health,
    LiveObject,
    PlanStep,
    spec_hash,
)
from heliostat.drivers.kubernetes_api import Connection
from heliostat.drivers.kubernetes_errors import ObjectRefused
from heliostat.drivers.kubernetes_ledger import SecretLedgerStore
from heliostat.drivers.kubernetes_objects import ObjectApi, ObjectRef, owned_fields
from heliostat.drivers.kubernetes_rollout import health_timeout, rollout, stuck_pod
from heliostat.drivers.kubernetes_status import WORKLOADS, service_rows
from heliostat.ledger_lock import Holder, Lease
from heliostat.ledger_store import LedgerStore

REVISION = "heliostat.io/revision"
WAVE = "heliostat.io/wave"
DEPENDS_ON = "heliostat.io/depends-on"
BOOKKEEPING = (REVISION, WAVE)
INVENTORY = "inventory.json"
# Objects no service owns (the Namespace, the Ingress) form a service of their own.
PLATFORM_SERVICE = "platform"
PARALLEL_REQUESTS = 8
POLL_SECONDS = 0.25


class KubernetesDriver:
    immutable_fields: frozenset[str] = frozenset()  # a Job is replaced by `apply` itself

    def __init__(self, platform: str, namespace: str, connection: Connection, *,
                 force_conflicts: bool = False) -> None:
        self.platform = platform
        self.namespace = namespace
        self.connection = connection
        self.objects = ObjectApi(connection.api)
        self.force_conflicts = force_conflicts
        self._store = NamespacedStore(SecretLedgerStore(connection.api, namespace, platform),
                                      self)
        self._inventory_lock = threading.Lock()
        self._observed: dict[str, dict[str, Any]] = {}  # what observe() last read, by key

    # -- reading ---------------------------------------------------------------------------

    def desired_objects(self, manifests: Mapping[str, str]) -> list[DesiredObject]:
        bodies = [yaml.safe_load(text) for _, text in sorted(manifests.items())]
        with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
            return list(pool.map(self._desired, bodies))

    def _desired(self, body: dict[str, Any]) -> DesiredObject:
        try:
            spec = owned_fields(self.objects.apply(body, dry_run=True,
                                                   force=self.force_conflicts))
        except ObjectRefused as refused:
            # 404: its namespace is not there yet. A Job's template cannot change in place:
            # `apply` runs a changed Job anew, so the rendered body is what it will be.
            job_changed = body["kind"] == "Job" and refused.status == 422
            if refused.status != 404 and not job_changed:
                raise
            spec = body
        spec = _comparable(spec)
        metadata = body["metadata"]
        depends = (metadata.get("annotations") or {}).get(DEPENDS_ON, "")
        return DesiredObject(
            key=ObjectRef.of(body).key, service=_service(body), spec=spec,
            depends_on=tuple(d for d in depends.split(",") if d),
            health_timeout=health_timeout(body))

    def observe(self) -> dict[str, LiveObject]:
        with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
            found = list(pool.map(self.objects.get, self._inventory()))
        live = {}
        self._observed = {}
        for obj in found:
            if obj is None or not self._ours(obj):
                continue
            self._observed[ObjectRef.of(obj).key] = obj
            annotations = obj["metadata"].get("annotations") or {}
            spec = _comparable(owned_fields(obj))
            key = ObjectRef.of(obj).key
            live[key] = LiveObject(
                key=key, service=_service(obj), spec_hash=spec_hash(spec),
                revision=int(annotations.get(REVISION, 0)), health=rollout(obj)[0],
                wave=int(annotations.get(WAVE, 0)), spec=spec)
        return live

    def service_rows(self, desired: list[DesiredObject],
                     live: dict[str, LiveObject]) -> list[dict[str, Any]]:
        """`heliostat status`'s row per service, from the objects `observe` read."""
        return service_rows(desired, live, self._observed)

    def _ours(self, obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return labels.get("app.kubernetes.io/managed-by") == "heliostat" and \
            labels.get("app.kubernetes.io/part-of") == self.platform

    # -- changing --------------------------------------------------------------------------

    def apply(self, step: PlanStep, revision: int) -> None:
        if step.action == "delete":
            assert step.live is not None and step.live.spec is not None
            ref = ObjectRef.of(step.live.spec)
            if ref.kind in WORKLOADS:
                # Done when its pods are gone too, as a removed container is on Compose.
                self.objects.delete(ref, propagation="Foreground")
                self._wait_gone(ref)
            elif ref.kind != "Namespace":  # it holds the ledger: `uninstall --purge` only
                self.objects.delete(ref)
            self._forget(ref)
            return
        assert step.desired is not None
        body = _with_bookkeeping(step.desired.spec, revision, step.wave)
        ref = ObjectRef.of(body)
        existing = self.objects.get(ref)
        if existing is not None and step.live is None and not self._ours(existing):
            raise ObjectRefused(ref.key, f"already exists in namespace {self.namespace} and "
                                f"was not made by heliostat for platform {self.platform}; "
                                "heliostat leaves it alone: remove or rename it", 409)
        self._remember(ref)
        if ref.kind == "Job" and existing is not None:
            # A Job's pod template cannot change: a changed Job is run anew.
            self.objects.delete(ref, propagation="Foreground")
            self._wait_gone(ref)
        self.objects.apply(body, force=self.force_conflicts)

    def wait(self, step: PlanStep, deadline: float) -> Health:
        if step.action == "delete" or step.desired is None:
            return Health.ok()
        ref = ObjectRef.of(step.desired.spec)
        while True:
            obj = self.objects.get(ref)
            if obj is None:
                return Health.failed("it disappeared while rolling out")
            health, why = rollout(obj)
            if health == "healthy":
                return Health.ok()
            if health == "unhealthy":
                return Health.failed(why, self._events(ref))
            stuck = stuck_pod(obj, self._pods(obj))
            if stuck:
                return Health.failed(stuck, self._events(ref))
            if time.monotonic() >= deadline:
                return Health.failed(f"not rolled out in time: {why}", self._events(ref))
            time.sleep(POLL_SECONDS)

    def run_in(self, key: str, command: tuple[str, ...], stdin: BinaryIO | None = None,
               stdout: Any = None) -> CommandResult:
        raise ObjectRefused(key, "running commands inside pods is not supported by the "
                            "kubernetes driver yet", 501)

    def ledger_store(self) -> LedgerStore:
        return self._store

    def remove_platform_objects(self, purge: bool) -> list[str]:
        """After an uninstall's plan removed the objects: with `purge`, the namespace too,
        and with it the volumes' claims, the secrets and the ledger."""
        if not purge:
            return []
        self.objects.delete(ObjectRef("v1", "Namespace", self.namespace, None))
        return [f"namespace {self.namespace} (volume claims, secrets, ledger)"]

    # -- the namespace and the inventory ---------------------------------------------------

    def ensure_namespace(self) -> None:
        """The platform's namespace, made before anything is written into it (the ledger
        and the lock live there)."""
        ref = ObjectRef("v1", "Namespace", self.namespace, None)
        if self.objects.get(ref) is None:
            self.objects.apply({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": self.namespace, "labels": {
                    "app.kubernetes.io/part-of": self.platform,
                    "app.kubernetes.io/managed-by": "heliostat"}}})

    def _inventory(self) -> list[ObjectRef]:
        data = self._store.read(INVENTORY)
        if data is None:
            return []
        return [ObjectRef.from_json(item) for item in json.loads(data)["objects"]]

    def _remember(self, ref: ObjectRef) -> None:
        """Recorded before the object is created, so a crash in between leaks nothing."""
        with self._inventory_lock:
            refs = self._inventory()
            if ref not in refs:
                self._write_inventory([*refs, ref])

    def _forget(self, ref: ObjectRef) -> None:
        with self._inventory_lock:
            refs = self._inventory()
            if ref in refs:
                self._write_inventory([r for r in refs if r != ref])

    def _write_inventory(self, refs: list[ObjectRef]) -> None:
        ordered = sorted(refs, key=lambda r: (r.kind, r.name))
        self._store.write(INVENTORY, json.dumps(
            {"objects": [r.to_json() for r in ordered]}, indent=1).encode())

    # -- details for a failed gate ---------------------------------------------------------

    def _pods(self, obj: dict[str, Any]) -> list[dict[str, Any]]:
        labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if obj.get("kind") == "Job":
            labels = {"batch.kubernetes.io/job-name": obj["metadata"]["name"]}
        if not labels:
            return []
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return self.objects.list("v1", "Pod", self.namespace, selector)

    def _events(self, ref: ObjectRef) -> tuple[str, ...]:
        """The last events about the object and its pods: there is no kubelet log to read
        when the image never started."""
        try:
            events = self.objects.list("v1", "Event", self.namespace)
        except ObjectRefused:
            return ()
        related = [e for e in events if (e.get("involvedObject") or {}).get("name", "")
                   .startswith(ref.name)]
        related.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return tuple(f"{e['involvedObject'].get('kind')} {e['involvedObject'].get('name')}: "
                     f"{e.get('reason')}: {e.get('message')}" for e in related[-10:])

    def _wait_gone(self, ref: ObjectRef, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.objects.get(ref) is not None:
            if time.monotonic() > deadline:
                raise ObjectRefused(ref.key, f"was not deleted within {timeout:.0f}s", 504)
            time.sleep(POLL_SECONDS)


class NamespacedStore:
    """The ledger store, with the namespace made before the first write or lock."""

    def __init__(self, store: SecretLedgerStore, driver: KubernetesDriver) -> None:
        self._inner = store
        self._driver = driver
        self.location = store.location
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            self._driver.ensure_namespace()
            self._ready = True

    def read(self, name: str) -> bytes | None:
        return self._inner.read(name)

    def names(self) -> list[str]:
        return self._inner.names()

    def write(self, name: str, data: bytes) -> None:
        self._ensure()
        self._inner.write(name, data)

    def write_blob(self, name: str) -> Any:
        return self._inner.write_blob(name)

    def open_blob(self, name: str) -> Any:
        return self._inner.open_blob(name)

    def remove(self, name: str) -> None:
        self._inner.remove(name)

    def acquire(self, holder: Holder, ttl: float) -> Lease:
        self._ensure()
        return self._inner.acquire(holder, ttl)

    def renew(self, lease: Lease, ttl: float) -> Lease:
        return self._inner.renew(lease, ttl)

    def release(self, lease: Lease) -> None:
        self._inner.release(lease)


def _service(obj: dict[str, Any]) -> str:
    labels = obj["metadata"].get("labels") or {}
    return labels.get("app.kubernetes.io/name") or PLATFORM_SERVICE


def _comparable(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec without the revision and wave heliostat stamps on every object."""
    metadata = dict(spec.get("metadata") or {})
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if k not in BOOKKEEPING}
    metadata.pop("annotations", None)
    if annotations:
        metadata["annotations"] = annotations
    return {**spec, "metadata": metadata}


def _with_bookkeeping(spec: dict[str, Any], revision: int, wave: int) -> dict[str, Any]:
    metadata = dict(spec["metadata"])
    metadata["annotations"] = {**(metadata.get("annotations") or {}),
                               REVISION: str(revision), WAVE: str(wave)}
    return {**spec, "metadata": metadata}
