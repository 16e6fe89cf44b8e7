"""Any Kubernetes object by reference: its REST path (found by discovery), get, list,
server-side apply (for real or as a dry-run) and delete, and the part of an object that
heliostat's field manager owns.

One generic client rather than a typed API per kind: heliostat applies whatever the profile
renders, and server-side apply is the same request for every kind.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from heliostat.drivers.kubernetes_api import FIELD_MANAGER, api_error
from heliostat.drivers.kubernetes_errors import KubernetesUnreachable, ObjectRefused

REQUEST_TIMEOUT = 30  # seconds, per request


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    name: str
    namespace: str | None  # None for a cluster-scoped object

    @classmethod
    def of(cls, body: dict[str, Any]) -> ObjectRef:
        metadata = body.get("metadata", {})
        return cls(body["apiVersion"], body["kind"], metadata["name"], metadata.get("namespace"))

    @property
    def key(self) -> str:
        """`deployment/event-api`: unique within one platform's namespace."""
        return f"{self.kind.lower()}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name,
                "namespace": self.namespace}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectRef:
        return cls(data["apiVersion"], data["kind"], data["name"], data.get("namespace"))


class ObjectApi:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self._resources: dict[str, dict[str, tuple[str, bool]]] = {}
        self._discovery = threading.Lock()

    # -- paths -----------------------------------------------------------------------------

    def collection_path(self, api_version: str, kind: str, namespace: str | None) -> str:
        plural, namespaced = self._resource(api_version, kind)
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if namespaced:
            if not namespace:
                raise ValueError(f"{kind} is namespaced: a namespace is needed")
            return f"{base}/namespaces/{namespace}/{plural}"
        return f"{base}/{plural}"

    def path(self, ref: ObjectRef) -> str:
        return f"{self.collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"

    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        with self._discovery:
            if api_version not in self._resources:
                base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
                listing = self.request("GET", base)
                self._resources[api_version] = {
                    r["kind"]: (r["name"], r["namespaced"]) for r in listing["resources"]
                    if "/" not in r["name"]}  # subresources (pods/log) are not kinds
        try:
            return self._resources[api_version][kind]
        except KeyError:
            raise KubernetesUnreachable(
                f"the API server serves no {kind} in {api_version}; is the cluster too old "
                "for this platform?") from None

    # -- requests --------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None,
                query: list[tuple[str, str]] | None = None,
                content_type: str = "application/json") -> Any:
        """One API request; the decoded answer. Raises ApiException for an HTTP error and
        KubernetesUnreachable when the server cannot be reached at all."""
        import urllib3.exceptions

        try:
            return self.api.call_api(
                path, method, query_params=query or [], body=body,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                auth_settings=["BearerToken"], response_type="object",
                _return_http_data_only=True, _request_timeout=REQUEST_TIMEOUT)
        except urllib3.exceptions.HTTPError as error:
            server = self.api.configuration.host
            raise KubernetesUnreachable(f"the Kubernetes API server at {server} cannot be "
                                        f"reached: {error}") from None

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        try:
            return self.request("GET", self.path(ref))
        except ApiException as error:
            if error.status == 404:
                return None
            raise ObjectRefused(ref.key, api_error(error), error.status) from None

    def list(self, api_version: str, kind: str, namespace: str | None,
             label_selector: str = "") -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        try:
            answer = self.request("GET", self.collection_path(api_version, kind, namespace),
                                  query=query)
        except ApiException as error:
            raise ObjectRefused(kind.lower(), api_error(error), error.status) from None
        return answer.get("items", [])

    def apply(self, body: dict[str, Any], *, dry_run: bool = False,
              force: bool = False) -> dict[str, Any]:
        """Server-side apply of `body` as heliostat's field manager. A field another manager
        owns with another value is a conflict (409) unless `force` takes it over."""
        ref = ObjectRef.of(body)
        query = [("fieldManager", FIELD_MANAGER), ("force", "true" if force else "false")]
        if dry_run:
            query.append(("dryRun", "All"))
        try:
            return self.request("PATCH", self.path(ref), body=body, query=query,
                                content_type="application/apply-patch+yaml")
        except ApiException as error:
            raise ObjectRefused(ref.key, _refusal(error), error.status) from None

    def delete(self, ref: ObjectRef, propagation: str = "Background") -> None:
        """Delete the object (and, by `propagation`, what it owns); gone already is fine."""
        try:
            self.request("DELETE", self.path(ref),
                         body={"kind": "DeleteOptions", "apiVersion": "v1",
                               "propagationPolicy": propagation})
        except ApiException as error:
            if error.status != 404:
                raise ObjectRefused(ref.key, api_error(error), error.status) from None


MESSAGE_LIMIT = 600  # characters: some refusals quote the whole object back


def _refusal(error: ApiException) -> str:
    message = api_error(error)
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT // 2] + " … " + message[-MESSAGE_LIMIT // 2:]
    if error.status == 409:
        return (f"{message}. Another field manager set these fields (kubectl, a controller); "
                "heliostat does not overwrite them unless asked: change them back, or run "
                "again with --force-conflicts to take them over")
    return message


def owned_fields(obj: dict[str, Any], manager: str = FIELD_MANAGER) -> dict[str, Any]:
    """The part of `obj` that `manager` applied, read from its managedFields: what heliostat
    set, as the server stored it (defaults and normalisation applied), without what other
    managers and controllers added. Identity (apiVersion, kind, name, namespace) included."""
    metadata = obj.get("metadata", {})
    owned: dict[str, Any] = {}
    for entry in metadata.get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            owned = _project(obj, entry.get("fieldsV1") or {})
    identity: dict[str, Any] = {"name": metadata.get("name")}
    if metadata.get("namespace"):
        identity["namespace"] = metadata["namespace"]
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), **owned,
            "metadata": {**owned.get("metadata", {}), **identity}}


def _project(value: Any, fields: dict[str, Any]) -> Any:
    """`value` cut down to the fieldsV1 set `fields` (`f:name`, `k:{...}`, `v:...`, `.`)."""
    if isinstance(value, dict):
        kept = {}
        for entry, children in fields.items():
            if not entry.startswith("f:"):
                continue
            name = entry[2:]
            if name in value:
                kept[name] = _project(value[name], children) if children else value[name]
        return kept
    if isinstance(value, list):
        items = []
        for item in value:
            for entry, children in fields.items():
                if (entry.startswith("k:") and _matches(item, json.loads(entry[2:]))) or \
                        (entry.startswith("v:") and item == json.loads(entry[2:])):
                    items.append(_project(item, children) if children and isinstance(
                        item, (dict, list)) else item)
                    break
        return items
    return value


def _matches(item: Any, key: dict[str, Any]) -> bool:
    return isinstance(item, dict) and all(item.get(k) == v for k, v in key.items())
