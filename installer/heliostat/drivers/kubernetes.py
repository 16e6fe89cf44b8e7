"""The kubernetes driver: one rendered Kubernetes object is one object of the plan.

- `desired_objects` asks the API server, by a server-side apply dry-run, what each rendered
  object would be, and keeps the fields heliostat's field manager would own: values are
  then in the server's form (defaults, `500m` for `0.5`), so they compare with what
  `observe` reads back, and a change someone made to a field heliostat owns shows in the
  plan (or as a conflict, reported unless --force-conflicts). No dry-run is needed for an
  object not there yet (the plan creates it whatever its spec), nor for one whose recorded
  hashes show that neither its rendered text nor the fields heliostat owns on it changed
  since heliostat applied it.
- `observe` reads the objects listed in the platform's inventory, a ledger document that
  names every object heliostat applied (one LIST per kind): nothing heliostat did not
  create is ever deleted.
- `apply` is a server-side apply as field manager `heliostat`; `wait` follows the rollout
  as `kubectl rollout status` does, from a watch of the objects' kind and of the pods.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
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
from heliostat.drivers.kubernetes_inventory import Inventory
from heliostat.drivers.kubernetes_ledger import SecretLedgerStore
from heliostat.drivers.kubernetes_objects import ObjectApi, ObjectRef, owned_fields
from heliostat.drivers.kubernetes_rollout import (
    ROLLOUT_KINDS,
    completed_by_its_pods,
    health_timeout,
    rollout,
    selected_pods,
    stuck_pod,
)
from heliostat.drivers.kubernetes_status import WORKLOADS, service_rows
from heliostat.drivers.kubernetes_watch import RECONNECT_SECONDS, KindWatch, NamespaceWatches
from heliostat.ledger_lock import Holder, Lease
from heliostat.ledger_store import LedgerStore

REVISION = "heliostat.io/revision"
WAVE = "heliostat.io/wave"
DEPENDS_ON = "heliostat.io/depends-on"
# What heliostat applied, to plan without a dry-run while nothing changed: the hash of the
# rendered object, and of the fields heliostat owned on it once the API server took it.
RENDERED_HASH = "heliostat.io/rendered-hash"
OWNED_HASH = "heliostat.io/owned-hash"
BOOKKEEPING = (REVISION, WAVE, RENDERED_HASH, OWNED_HASH)
MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
# Objects no service owns (the Namespace, the Ingress) form a service of their own.
PLATFORM_SERVICE = "platform"
PARALLEL_REQUESTS = 8
GONE_CHECK_SECONDS = 1.0  # a deleted object is looked up again at least this often
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ten times faster


class KubernetesDriver:
    immutable_fields: frozenset[str] = frozenset()  # a Job is replaced by `apply` itself

    def __init__(self, platform: str, namespace: str, connection: Connection, *,
                 force_conflicts: bool = False,
                 reconnect_seconds: float = RECONNECT_SECONDS) -> None:
        self.platform = platform
        self.namespace = namespace
        self.connection = connection
        self.objects = ObjectApi(connection.api)
        self.force_conflicts = force_conflicts
        self._store = NamespacedStore(SecretLedgerStore(connection.api, namespace, platform),
                                      self)
        self.inventory = Inventory(self._store)
        self.reconnect_seconds = reconnect_seconds
        self._watches: NamespaceWatches | None = None
        self._watches_lock = threading.Lock()
        self._observed: dict[str, dict[str, Any]] = {}  # what observe() last read, by key
        # What desired_objects() read, for the observe() a plan makes right after it.
        self._read_for_plan: dict[str, dict[str, Any]] | None = None
        self._desired_refs: list[ObjectRef] = []  # what desired_objects() last returned
        self._rendered: dict[tuple[str, str], str] = {}  # (key, spec hash) -> rendered hash
        self._applied: dict[str, tuple[str, int]] = {}  # key -> (uid, generation) applied

    # -- reading ---------------------------------------------------------------------------

    def desired_objects(self, manifests: Mapping[str, str]) -> list[DesiredObject]:
        bodies = [yaml.load(text, Loader=_LOADER) for _, text in sorted(manifests.items())]
        live = self._read_for_plan = self._live_objects()
        with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
            desired = list(pool.map(
                lambda body: self._desired(body, live.get(ObjectRef.of(body).key)), bodies))
        self._desired_refs = [ObjectRef.of(obj.spec) for obj in desired]
        return _workloads_last(desired)

    def _desired(self, body: dict[str, Any], live: dict[str, Any] | None) -> DesiredObject:
        rendered = spec_hash(body)
        if live is None:
            # Not there yet: the plan creates it whatever its spec, and the API server
            # checks it when its wave applies it.
            spec = body
        elif _unchanged_since_applied(live, rendered):
            spec = owned_fields(live)  # what the dry-run would answer
        else:
            spec = self._dry_run(body)
        spec = _comparable(spec)
        self._rendered[(ObjectRef.of(body).key, spec_hash(spec))] = rendered
        metadata = body["metadata"]
        depends = (metadata.get("annotations") or {}).get(DEPENDS_ON, "")
        return DesiredObject(
            key=ObjectRef.of(body).key, service=_service(body), spec=spec,
            depends_on=tuple(d for d in depends.split(",") if d),
            health_timeout=health_timeout(body))

    def _dry_run(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return owned_fields(self.objects.apply(body, dry_run=True,
                                                   force=self.force_conflicts))
        except ObjectRefused as refused:
            # 404: its namespace is not there yet. A Job's template cannot change in place:
            # `apply` runs a changed Job anew, so the rendered body is what it will be.
            job_changed = body["kind"] == "Job" and refused.status == 422
            if refused.status != 404 and not job_changed:
                raise
            return body

    def observe(self) -> dict[str, LiveObject]:
        # A plan observes right after desired_objects() read the same objects: nothing was
        # applied in between, so that read serves (one LIST per kind, not two).
        read, self._read_for_plan = self._read_for_plan, None
        self._observed = read if read is not None else self._live_objects()
        live = {}
        for obj in self._observed.values():
            annotations = obj["metadata"].get("annotations") or {}
            spec = _comparable(owned_fields(obj))
            key = ObjectRef.of(obj).key
            live[key] = LiveObject(
                key=key, service=_service(obj), spec_hash=spec_hash(spec),
                revision=int(annotations.get(REVISION, 0)), health=rollout(obj)[0],
                wave=int(annotations.get(WAVE, 0)), spec=spec)
        return live

    def _live_objects(self) -> dict[str, dict[str, Any]]:
        """The inventory's objects that are on the cluster and heliostat's, by key: one LIST
        per kind (of this platform's labels), a GET for a cluster-scoped one."""
        listed = set(self.inventory.read())
        kinds = sorted({(r.api_version, r.kind, r.namespace) for r in listed if r.namespace})
        selector = f"{MANAGED_BY}=heliostat,{PART_OF}={self.platform}"

        def read(kind: tuple[str, str, str]) -> list[dict[str, Any]]:
            api_version, name, namespace = kind
            items = self.objects.list(api_version, name, namespace, selector)
            return [{"apiVersion": api_version, "kind": name, **item} for item in items]

        with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
            found = [obj for items in pool.map(read, kinds) for obj in items]
            found += [obj for obj in pool.map(self.objects.get,
                                              [r for r in listed if not r.namespace]) if obj]
        return {ObjectRef.of(obj).key: obj for obj in found
                if ObjectRef.of(obj) in listed and self._ours(obj)}

    def service_rows(self, desired: list[DesiredObject],
                     live: dict[str, LiveObject]) -> list[dict[str, Any]]:
        """`heliostat status`'s row per service, from the objects `observe` read."""
        return service_rows(desired, live, self._observed)

    def _ours(self, obj: dict[str, Any]) -> bool:
        labels = obj["metadata"].get("labels") or {}
        return labels.get(MANAGED_BY) == "heliostat" and labels.get(PART_OF) == self.platform

    # -- changing --------------------------------------------------------------------------

    def apply(self, step: PlanStep, revision: int) -> None:
        self._read_for_plan = None
        if step.action == "delete":
            assert step.live is not None and step.live.spec is not None
            ref = ObjectRef.of(step.live.spec)
            if ref.kind in WORKLOADS:
                # Done when its pods are gone too, as a removed container is on Compose.
                self.objects.delete(ref, propagation="Foreground")
                self._wait_gone(ref)
            elif ref.kind != "Namespace":  # it holds the ledger: `uninstall --purge` only
                self.objects.delete(ref)
            self.inventory.forget(ref)
            return
        desired = step.desired
        assert desired is not None
        rendered = self._rendered.get((desired.key, desired.spec_hash), "")
        # The fields heliostat will own, as far as known before the server answers: exact
        # after a dry-run, the rendered values for an object created without one.
        body = _with_bookkeeping(desired.spec, revision, step.wave, rendered,
                                 desired.spec_hash)
        ref = ObjectRef.of(body)
        # Only a create can meet an object heliostat did not make; only a Job is replaced.
        existing = self.objects.get(ref) if step.live is None or ref.kind == "Job" else None
        if existing is not None and step.live is None and not self._ours(existing):
            raise ObjectRefused(ref.key, f"already exists in namespace {self.namespace} and "
                                f"was not made by heliostat for platform {self.platform}; "
                                "heliostat leaves it alone: remove or rename it", 409)
        self.inventory.remember(ref, along=self._desired_refs,
                                live={ObjectRef.of(o) for o in self._observed.values()})
        if ref.kind == "Job" and existing is not None:
            # A Job's pod template cannot change: a changed Job is run anew.
            self.objects.delete(ref, propagation="Foreground")
            self._wait_gone(ref)
        applied = self.objects.apply(body, force=self.force_conflicts)
        owned = spec_hash(_comparable(owned_fields(applied)))
        if owned != desired.spec_hash:
            # The server's form differs from the rendered one (`100m` for `0.1`): record
            # the owned fields' real hash, so that the next plan needs no dry-run.
            applied = self.objects.apply(_with_bookkeeping(desired.spec, revision, step.wave,
                                                           rendered, owned),
                                         force=self.force_conflicts)
        metadata = applied.get("metadata") or {}
        self._applied[desired.key] = (str(metadata.get("uid", "")),
                                      int(metadata.get("generation", 0)))

    def wait(self, step: PlanStep, deadline: float) -> Health:
        if step.action == "delete" or step.desired is None:
            return Health.ok()
        ref = ObjectRef.of(step.desired.spec)
        if ref.kind not in ROLLOUT_KINDS:
            return Health.ok()  # nothing rolls out: it is done once the API server took it
        baseline = self._applied.get(ref.key)
        if baseline is None:  # applied by an earlier, interrupted command
            found = self.objects.get(ref)
            if found is None:
                return Health.failed("it disappeared while rolling out")
            baseline = (found["metadata"]["uid"], int(found["metadata"].get("generation", 0)))
        uid, generation = baseline
        watches = self.watches()
        objects = watches.of(ref.api_version, ref.kind)
        pods = watches.of("v1", "Pod")
        waiting_for = ["its controller has not reported on it yet"]

        def verdict() -> tuple[bool, str] | None:
            obj = objects.objects.get(ref.name)
            if obj is None or obj["metadata"].get("uid") != uid:
                return (False, "") if uid in objects.deleted else None
            if int(obj["metadata"].get("generation", 0)) < generation:
                return None  # the cache has not seen this apply yet
            health, why = rollout(obj)
            waiting_for[0] = why
            if health == "healthy":
                return True, ""
            if health == "unhealthy":
                return False, why
            selected = selected_pods(obj, list(pods.objects.values()))
            if ref.kind == "Job" and completed_by_its_pods(obj, selected):
                return True, ""
            stuck = stuck_pod(obj, selected)
            return (False, stuck) if stuck else None

        answer = watches.wait_until(verdict, deadline, (objects, pods))
        if answer is None:
            return Health.failed(f"not rolled out in time: {waiting_for[0]}",
                                 self._events(ref))
        healthy, reason = answer
        if healthy:
            return Health.ok()
        if not reason:
            return Health.failed("it disappeared while rolling out")
        return Health.failed(reason, self._events(ref))

    def watches(self) -> NamespaceWatches:
        """The watches gates follow objects with, on a connection pool of their own (each
        holds a connection for as long as it runs)."""
        with self._watches_lock:
            if self._watches is None:
                from kubernetes import client

                self._watches = NamespaceWatches(
                    client.ApiClient(self.connection.api.configuration),
                    lambda api_version, kind: self.objects.collection_path(
                        api_version, kind, self.namespace),
                    self.reconnect_seconds)
            return self._watches

    def close(self) -> None:
        """Stop the watches (the connection is the caller's)."""
        with self._watches_lock:
            if self._watches is not None:
                self._watches.close()
                self._watches = None

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

    # -- details for a failed gate ---------------------------------------------------------

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
        """Until the object is deleted: looked up when its watch says so, and at least every
        GONE_CHECK_SECONDS."""
        deadline = time.monotonic() + timeout
        watches = self.watches()
        watch = watches.of(ref.api_version, ref.kind)
        while (found := self.objects.get(ref)) is not None:
            if time.monotonic() > deadline:
                raise ObjectRefused(ref.key, f"was not deleted within {timeout:.0f}s", 504)
            watches.wait_until(partial(_deleted, watch, found["metadata"].get("uid")),
                               min(deadline, time.monotonic() + GONE_CHECK_SECONDS), (watch,))


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


def _workloads_last(desired: list[DesiredObject]) -> list[DesiredObject]:
    """Each workload applied after the other objects of its service, as Helm orders kinds:
    a pod made before its ServiceAccount is refused, before its ConfigMap waits for it."""
    others: dict[str, list[str]] = {}
    for obj in desired:
        if obj.spec["kind"] not in ROLLOUT_KINDS:
            others.setdefault(obj.service, []).append(obj.key)
    return [dataclasses.replace(obj, applied_after=tuple(others.get(obj.service, ())))
            if obj.spec["kind"] in ROLLOUT_KINDS else obj for obj in desired]


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


def _with_bookkeeping(spec: dict[str, Any], revision: int, wave: int, rendered: str,
                      owned: str) -> dict[str, Any]:
    metadata = dict(spec["metadata"])
    recorded = {REVISION: str(revision), WAVE: str(wave), OWNED_HASH: owned}
    if rendered:
        recorded[RENDERED_HASH] = rendered
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **recorded}
    return {**spec, "metadata": metadata}


def _deleted(watch: KindWatch, uid: str) -> bool | None:
    return True if uid in watch.deleted else None


def _unchanged_since_applied(live: dict[str, Any], rendered: str) -> bool:
    """Whether heliostat applied this very rendered object last, and the fields it owns are
    still as the API server left them then: a dry-run would then answer those fields.
    Someone else changing one of them takes it over (or removes it), which changes them."""
    annotations = live["metadata"].get("annotations") or {}
    return (annotations.get(RENDERED_HASH) == rendered
            and annotations.get(OWNED_HASH) == spec_hash(_comparable(owned_fields(live))))
