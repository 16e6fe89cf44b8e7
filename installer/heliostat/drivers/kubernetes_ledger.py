"""The release ledger of a platform on Kubernetes: each document a Secret of the platform's
namespace, the lock a `coordination.k8s.io/v1` Lease.

Both are single API objects, and the API server writes one object atomically and only if
its resourceVersion is still the one read: a reader sees a whole document, and of many
processes racing for the lock exactly one replaces (or creates) the Lease.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, BinaryIO, NoReturn, TypeVar

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from heliostat.drivers.kubernetes_api import FIELD_MANAGER, api_error
from heliostat.ledger_lock import Holder, Lease, LeaseLost, LedgerError, LockHeld
from heliostat.ledger_store import LedgerCorrupt

SECRET_TYPE = "heliostat.io/ledger"
DOCUMENT_KEY = "document"
NAME_ANNOTATION = "heliostat.io/document"
LEASE_ANNOTATION = "heliostat.io/lease"
PLATFORM_LABEL = "heliostat.io/platform"
DOCUMENT_LABEL = "heliostat.io/ledger-document"
MANAGED_BY = {"app.kubernetes.io/managed-by": "heliostat"}
MAX_DOCUMENT = 1024 * 1024  # the API server refuses a Secret whose data is larger
MAX_OBJECT_NAME = 253
REQUEST_TIMEOUT = 30.0  # seconds; a hung API server must not hang a command
ATTEMPTS = 5  # read-and-replace rounds lost to concurrent writers before giving up
# A DNS subdomain, as Secret names must be: dot-separated labels of [a-z0-9-], each starting
# and ending with a letter or digit.
_LABEL = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_PLATFORM = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

T = TypeVar("T")


class LedgerApiError(LedgerError):
    """The API server refused a request or could not be reached; the ledger is unchanged."""


class SecretLedgerStore:
    """A platform's ledger in its namespace: documents as Secrets, the lock as a Lease.

    Data dumps (blobs) are not kept here yet: they can be gigabytes, far above what a
    Secret holds.
    """

    def __init__(self, api: client.ApiClient, namespace: str, platform: str) -> None:
        if not _PLATFORM.fullmatch(platform):
            raise ValueError(f"not a valid platform name: {platform!r}")
        self.namespace = namespace
        self.platform = platform
        self.location = f"Secrets of namespace {namespace}"
        self.lease_name = f"heliostat-{platform}-lock"
        self._host = api.configuration.host
        self._core = client.CoreV1Api(api)
        self._coordination = client.CoordinationV1Api(api)

    # -- documents ---------------------------------------------------------------------------

    def secret_name(self, name: str) -> str:
        """The Secret holding document `name`. Names must already be lower-case: folding
        them would give `A.json` and `a.json` one Secret."""
        secret = f"heliostat-ledger-{self.platform}-{name}"
        if not _NAME.fullmatch(name) or len(secret) > MAX_OBJECT_NAME:
            raise ValueError(f"not a valid ledger name on Kubernetes: {name!r} (lower-case "
                             "letters, digits, '-' and '.'; at most "
                             f"{MAX_OBJECT_NAME - len(secret) + len(name)} characters)")
        return secret

    def read(self, name: str) -> bytes | None:
        secret = self.secret_name(name)
        found = self._call(f"read Secret {self._at(secret)}", lambda: self._missing_as_none(
            lambda: self._core.read_namespaced_secret(
                secret, self.namespace, _request_timeout=REQUEST_TIMEOUT)))
        if found is None:
            return None
        data = found.data or {}
        if DOCUMENT_KEY not in data:
            raise LedgerCorrupt(f"Secret {self._at(secret)}", f"it has no `{DOCUMENT_KEY}` key")
        return base64.b64decode(data[DOCUMENT_KEY] or "")

    def write(self, name: str, data: bytes) -> None:
        secret = self.secret_name(name)
        what = f"write Secret {self._at(secret)}"
        if len(data) > MAX_DOCUMENT:
            raise LedgerApiError(
                f"could not {what}: the document is {len(data)} bytes, more than the "
                f"{MAX_DOCUMENT} a Kubernetes Secret holds; the ledger keeps its previous state.")
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
            "metadata": {
                "name": secret, "namespace": self.namespace,
                "labels": {**MANAGED_BY, PLATFORM_LABEL: self.platform, DOCUMENT_LABEL: "true"},
                "annotations": {NAME_ANNOTATION: name},
            },
            "data": {DOCUMENT_KEY: base64.b64encode(data).decode("ascii")},
        }
        for _ in range(ATTEMPTS):
            current = self._call(what, lambda: self._missing_as_none(
                lambda: self._core.read_namespaced_secret(
                    secret, self.namespace, _request_timeout=REQUEST_TIMEOUT)))
            try:
                if current is None:
                    self._core.create_namespaced_secret(
                        self.namespace, body, field_manager=FIELD_MANAGER,
                        _request_timeout=REQUEST_TIMEOUT)
                else:
                    body["metadata"]["resourceVersion"] = current.metadata.resource_version
                    self._core.replace_namespaced_secret(
                        secret, self.namespace, body, field_manager=FIELD_MANAGER,
                        _request_timeout=REQUEST_TIMEOUT)
                return
            except ApiException as error:
                if error.status != 409:  # 409: another write came between; read again
                    self._fail(what, error)
            except urllib3.exceptions.HTTPError as error:
                self._fail(what, error)
        raise LedgerApiError(f"could not {what}: it kept changing under this process "
                             f"({ATTEMPTS} attempts); the ledger keeps its previous state.")

    def names(self) -> list[str]:
        selector = f"{PLATFORM_LABEL}={self.platform},{DOCUMENT_LABEL}=true"
        found = self._call(f"list the ledger's Secrets in namespace {self.namespace}",
                           lambda: self._core.list_namespaced_secret(
                               self.namespace, label_selector=selector,
                               _request_timeout=REQUEST_TIMEOUT))
        names = []
        for item in found.items:
            name = (item.metadata.annotations or {}).get(NAME_ANNOTATION, "")
            with contextlib.suppress(ValueError):
                if self.secret_name(name) == item.metadata.name:  # what `read` finds
                    names.append(name)
        return sorted(names)

    def remove(self, name: str) -> None:
        secret = self.secret_name(name)
        self._call(f"delete Secret {self._at(secret)}", lambda: self._missing_as_none(
            lambda: self._core.delete_namespaced_secret(
                secret, self.namespace, _request_timeout=REQUEST_TIMEOUT)))

    def write_blob(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        self._no_blobs(name)

    def open_blob(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        self._no_blobs(name)

    def _no_blobs(self, name: str) -> NoReturn:
        raise LedgerError(f"{name}: data backups are not kept on Kubernetes yet (a dump can "
                          "be far larger than a Secret holds). Back the data up with the "
                          "cluster's own tools before changing it.")

    # -- the lock ----------------------------------------------------------------------------

    def acquire(self, holder: Holder, ttl: float) -> Lease:
        what = f"take the lock (Lease {self._at(self.lease_name)})"
        for _ in range(ATTEMPTS):
            found = self._read_lock(what)
            lease = Lease.grant(holder, ttl)
            try:
                if found is None:
                    self._coordination.create_namespaced_lease(
                        self.namespace, self._lease_body(lease, ttl, None),
                        field_manager=FIELD_MANAGER, _request_timeout=REQUEST_TIMEOUT)
                    return lease
                existing, current = found
                if current is not None and not current.expired() and not current.holder.is_gone():
                    raise LockHeld(current, self.location)
                self._coordination.replace_namespaced_lease(
                    self.lease_name, self.namespace, self._lease_body(lease, ttl, existing),
                    field_manager=FIELD_MANAGER, _request_timeout=REQUEST_TIMEOUT)
                return lease
            except ApiException as error:
                # 409: another process created or replaced it first; 404 on a replace: it
                # was released meanwhile. Read again: a winner's live lease is LockHeld.
                if not (error.status == 409 or (error.status == 404 and found is not None)):
                    self._fail(what, error)
            except urllib3.exceptions.HTTPError as error:
                self._fail(what, error)
        raise LedgerApiError(f"could not {what}: it kept changing under this process "
                             f"({ATTEMPTS} attempts); run the command again.")

    def renew(self, lease: Lease, ttl: float) -> Lease:
        what = f"renew the lock (Lease {self._at(self.lease_name)})"
        for _ in range(ATTEMPTS):
            found = self._read_lock(what)
            current = found[1] if found else None
            if found is None or current is None or current.token != lease.token:
                raise LeaseLost(lease, current, self.location)
            renewed = lease.extended(ttl)
            try:
                self._coordination.replace_namespaced_lease(
                    self.lease_name, self.namespace, self._lease_body(renewed, ttl, found[0]),
                    field_manager=FIELD_MANAGER, _request_timeout=REQUEST_TIMEOUT)
                return renewed
            except ApiException as error:
                if error.status not in (404, 409):  # changed or gone since read: read again
                    self._fail(what, error)
            except urllib3.exceptions.HTTPError as error:
                self._fail(what, error)
        raise LedgerApiError(f"could not {what}: it kept changing under this process "
                             f"({ATTEMPTS} attempts).")

    def release(self, lease: Lease) -> None:
        what = f"release the lock (Lease {self._at(self.lease_name)})"
        found = self._read_lock(what)
        if found is None or found[1] is None or found[1].token != lease.token:
            return
        metadata = found[0].metadata
        options = client.V1DeleteOptions(preconditions=client.V1Preconditions(
            resource_version=metadata.resource_version, uid=metadata.uid))
        try:
            self._coordination.delete_namespaced_lease(
                self.lease_name, self.namespace, body=options, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as error:
            if error.status not in (404, 409):  # gone, or no longer the lease we read
                self._fail(what, error)
        except urllib3.exceptions.HTTPError as error:
            self._fail(what, error)

    def _read_lock(self, what: str) -> tuple[client.V1Lease, Lease | None] | None:
        """The Lease object and heliostat's lease in it (None once released), or None when
        there is no Lease."""
        found = self._call(what, lambda: self._missing_as_none(
            lambda: self._coordination.read_namespaced_lease(
                self.lease_name, self.namespace, _request_timeout=REQUEST_TIMEOUT)))
        if found is None:
            return None
        if not (found.spec and found.spec.holder_identity):
            return found, None
        where = f"Lease {self._at(self.lease_name)}"
        text = (found.metadata.annotations or {}).get(LEASE_ANNOTATION)
        if text is None:
            raise LedgerCorrupt(where, f"it has no {LEASE_ANNOTATION} annotation")
        try:
            lease = Lease.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise LedgerCorrupt(where, f"its {LEASE_ANNOTATION} annotation: {exc}") from None
        if lease.token != found.spec.holder_identity:
            raise LedgerCorrupt(where, f"its holderIdentity is not the token of its "
                                f"{LEASE_ANNOTATION} annotation")
        return found, lease

    def _lease_body(self, lease: Lease, ttl: float,
                    existing: client.V1Lease | None) -> dict[str, Any]:
        now = _micro_time(datetime.now(timezone.utc))
        metadata: dict[str, Any] = {
            "name": self.lease_name, "namespace": self.namespace,
            "labels": {**MANAGED_BY, PLATFORM_LABEL: self.platform},
            "annotations": {LEASE_ANNOTATION: json.dumps(lease.to_json())},
        }
        spec: dict[str, Any] = {"holderIdentity": lease.token,
                                "leaseDurationSeconds": max(1, math.ceil(ttl)),
                                "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        if existing is not None:
            metadata["resourceVersion"] = existing.metadata.resource_version
            before = existing.spec
            transitions = (before.lease_transitions or 0) if before else 0
            if before and before.holder_identity == lease.token:
                if before.acquire_time:
                    spec["acquireTime"] = _micro_time(before.acquire_time)
            else:
                transitions += 1
            spec["leaseTransitions"] = transitions
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": metadata, "spec": spec}

    # -- requests ----------------------------------------------------------------------------

    def _at(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    @staticmethod
    def _missing_as_none(request: Callable[[], T]) -> T | None:
        try:
            return request()
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _call(self, what: str, request: Callable[[], T]) -> T:
        try:
            return request()
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            self._fail(what, error)

    def _fail(self, what: str, error: ApiException | urllib3.exceptions.HTTPError) -> NoReturn:
        if isinstance(error, ApiException):
            reason = f"the API server answered {error.status}: {api_error(error)}"
            if error.status in (401, 403):
                reason += (f". Give this user RBAC rights to get, list, create, update and "
                           f"delete secrets and leases in namespace {self.namespace}")
        else:
            cause = getattr(error, "reason", None) or error
            reason = (f"cannot reach the API server at {self._host} "
                      f"({str(cause).split(': ', 1)[-1]}); is the cluster up?")
        raise LedgerApiError(f"could not {what}: {reason}. The ledger was not changed; "
                             "fix that and run the command again.") from None


def _micro_time(moment: datetime) -> str:
    """Kubernetes' MicroTime: RFC 3339 with exactly six fraction digits, which
    `datetime.isoformat` leaves out when they are zero."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

