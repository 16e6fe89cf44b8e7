"""The checks of `heliostat doctor` on the Kubernetes target: the kubeconfig, the API server,
this user's rights in the platform's namespace, the StorageClass, the namespace, the lock,
the registry the cluster pulls from, and the bundle.

Read-only: every request is a GET, but for the reviews of this user's rights
(SelfSubjectAccessReview, SelfSubjectReview), which the API server answers without storing
anything. The namespace is looked at, not made; the Lease is read without taking the lock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import urllib3.exceptions
import yaml
from kubernetes.client.exceptions import ApiException

from heliostat.bundle_check import bundle_state
from heliostat.doctor import (
    CannotCheck,
    Check,
    Finding,
    human_bytes,
    kubernetes_version_rule,
    lease_rule,
    parse_size,
    run_checks,
)
from heliostat.drivers.kubernetes_api import Connection, api_error, connect, kubeconfig_path
from heliostat.drivers.kubernetes_errors import KubernetesUnreachable, ObjectRefused
from heliostat.drivers.kubernetes_ledger import LEASE_ANNOTATION, SecretLedgerStore
from heliostat.drivers.kubernetes_objects import ObjectApi, ObjectRef
from heliostat.ledger_lock import Lease
from heliostat.ledger_store import LedgerCorrupt

if TYPE_CHECKING:
    from heliostat.target_kubernetes import KubernetesTarget

# As the driver's PARALLEL_REQUESTS: a few hundred reviews take a second or two on a
# remote API server instead of a minute, without flooding it.
PARALLEL_REVIEWS = 8
SERVER_TIMEOUT = 15  # seconds for /version: doctor must answer, not hang on a dead server
REGISTRY_TIMEOUT = 10  # seconds
MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class",
                 "storageclass.beta.kubernetes.io/is-default-class")  # the older one still works
RBAC = "rbac.authorization.k8s.io"
# What the driver does to each kind of object it renders (it reads them back, server-side
# applies them for real and as a dry-run, follows their rollout and deletion by a watch,
# deletes what a revision no longer renders).
OBJECT_VERBS = ("get", "list", "watch", "create", "patch", "delete")
SECRET_VERBS = ("get", "list", "create", "update", "patch", "delete")  # ledger, secrets
LEASE_VERBS = ("get", "create", "update", "delete")  # the lock: taken, renewed, released
READ_VERBS = ("get", "list", "watch")  # pods (the gates follow them), events
VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
              "escalate", "bind", "*")
_CONNECTION_PREFIX = re.compile(r"^(<[^>]*>|\w+\([^)]*\)): ")


@dataclass(frozen=True)
class Permission:
    """One thing to ask the API server whether this user may do (one SelfSubjectAccessReview)."""

    verb: str
    group: str  # "" for the core group
    resource: str  # the plural, as RBAC names it
    namespace: str = ""  # "" for a cluster-scoped resource
    name: str = ""  # one object only

    @property
    def resource_name(self) -> str:
        """`secrets`, `leases.coordination.k8s.io`: as kubectl and RBAC write it."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def review(self) -> dict[str, Any]:
        attributes = {"verb": self.verb, "group": self.group, "resource": self.resource}
        attributes.update({k: v for k, v in (("namespace", self.namespace),
                                             ("name", self.name)) if v})
        return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes}}


@dataclass(frozen=True)
class RoleGrant:
    """A Role the platform renders. RBAC lets a user create it, and bind it, only when the
    user holds every right it grants, or may `escalate` and `bind` roles instead."""

    name: str
    grants: tuple[Permission, ...]
    instead: tuple[Permission, ...]


@dataclass(frozen=True)
class NeededRights:
    driver: tuple[Permission, ...]  # install, upgrade, rollback, uninstall
    purge: tuple[Permission, ...]  # `uninstall --purge` only
    roles: tuple[RoleGrant, ...] = ()

    def all(self) -> list[Permission]:
        every = [*self.driver, *self.purge]
        for role in self.roles:
            every += [*role.grants, *role.instead]
        return list(dict.fromkeys(every))


@dataclass(frozen=True)
class Claim:
    """Persistent volume claims one rendered object makes (a StatefulSet: one per replica)."""

    owner: str  # `statefulset/postgres`
    storage_class: str  # "" for the cluster's default
    size: int  # bytes, each
    count: int


class KubernetesDoctor:
    """Every check for one platform on the cluster of its kubeconfig context."""

    where = "this cluster"

    def __init__(self, target: KubernetesTarget, bundle_file: Path | None = None) -> None:
        self.target = target
        self.bundle_file = bundle_file
        self.namespace = target.namespace
        self.path = kubeconfig_path(target.kubeconfig)

    @cached_property
    def manifests(self) -> dict[str, str]:
        """The rendered objects, their images not pinned to digests (the target finds those
        in the ledger, on the cluster): the kinds and volume claims are the same."""
        from heliostat.target import rendered_files

        return rendered_files(self.target.model)

    def checks(self) -> list[Check]:
        try:
            return run_checks([
                ("kubeconfig", self.kubeconfig_check),
                ("api-server", self.api_server_check),
                ("permissions", self._on_server(self.permissions_check)),
                ("storage-class", self._on_server(self.storage_class_check)),
                ("namespace", self._on_server(self.namespace_check)),
                ("lock", self._on_server(self.lock_check)),
                ("registry", self.registry_check),
                ("bundle", self.bundle_check),
            ])
        finally:
            connection, _ = self._connection
            if connection is not None:
                connection.close()

    # -- the kubeconfig and the API server --

    @cached_property
    def _connection(self) -> tuple[Connection | None, Finding]:
        try:
            connection = connect(self.target.kubeconfig, self.target.context)
        except KubernetesUnreachable as exc:
            return None, Finding.fail(str(exc), (
                "point --kubeconfig, target.kubernetes.kubeconfig or KUBECONFIG at the file "
                "kubectl uses for this cluster, and --context or target.kubernetes.context at "
                "one of its contexts (`kubectl config get-contexts`)"))
        return connection, Finding.ok(f"{self.path}: context {connection.context}, server "
                                      f"{connection.server}")

    def kubeconfig_check(self) -> Finding:
        return self._connection[1]

    @cached_property
    def _server(self) -> tuple[ObjectApi | None, Finding]:
        connection, _ = self._connection
        if connection is None:
            return None, Finding.fail("no server to reach: the kubeconfig cannot be used",
                                      "fix the kubeconfig first (see the kubeconfig check)")
        try:
            version = connection.api.call_api(
                "/version", "GET", header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"], response_type="object",
                _return_http_data_only=True, _request_timeout=SERVER_TIMEOUT)
        except urllib3.exceptions.HTTPError as exc:
            return None, Finding.fail(
                f"cannot reach the Kubernetes API server at {connection.server}: "
                f"{connection_error(exc)}",
                f"start the API server, or correct the server of context {connection.context} "
                f"in {self.path} (`kubectl --kubeconfig {self.path} cluster-info` tries it)")
        except ApiException as exc:
            if exc.status == 401:
                return None, Finding.fail(
                    f"the API server at {connection.server} refuses the credentials of context "
                    f"{connection.context}: {api_error(exc)}",
                    f"renew the user's certificate or token in {self.path} (`kubectl auth "
                    "whoami` shows whether the server accepts it)")
            # It answers, but keeps its version to itself: the other checks can run.
            return ObjectApi(connection.api), Finding.warn(
                f"the API server at {connection.server} answers but not with its version "
                f"({exc.status}: {api_error(exc)})",
                "make sure the cluster runs a Kubernetes heliostat supports (`kubectl version`)")
        return ObjectApi(connection.api), kubernetes_version_rule(
            str((version or {}).get("gitVersion", "?")), connection.server)

    def api_server_check(self) -> Finding:
        return self._server[1]

    @property
    def objects(self) -> ObjectApi:
        objects, _ = self._server
        if objects is None:
            raise CannotCheck("it needs the API server, which cannot be used",
                              "make the API server reachable (see the api-server check), then "
                              "run `heliostat doctor` again")
        return objects

    def _on_server(self, probe: Callable[[], Finding]) -> Callable[[], Finding]:
        """`probe`, with the API server going away under it, or refusing to let this user
        read what it needs, reported as not checked."""
        def guarded() -> Finding:
            try:
                return probe()
            except KubernetesUnreachable as exc:
                raise CannotCheck(str(exc), "make the API server reachable, then run "
                                  "`heliostat doctor` again") from None
            except ObjectRefused as exc:
                raise CannotCheck(f"the API server refused to show {exc}",
                                  "run doctor as the user that installs (its kubeconfig), or "
                                  "grant that user read access to it") from None
        return guarded

    # -- permissions --

    def permissions_check(self) -> Finding:
        try:
            needed = self._needed_rights()
        except KubernetesUnreachable as exc:
            if "serves no" not in str(exc):  # not a missing kind: the server went away
                raise
            return Finding.fail(str(exc), "use a cluster that serves every kind the platform "
                                "renders (Kubernetes 1.29 or later)")
        with ThreadPoolExecutor(PARALLEL_REVIEWS) as pool:
            asked = needed.all()
            answers = dict(zip(asked, pool.map(self._allowed, asked), strict=True))
        return permissions_rule(needed, answers, self.namespace, self._user())

    def _needed_rights(self) -> NeededRights:
        namespace = self.namespace
        driver: list[Permission] = []
        roles = []
        for body in rendered_objects(self.manifests):
            if body["kind"] == "Namespace":
                continue  # the namespace's own rights are below
            group, resource, namespaced = self._resource(body["apiVersion"], body["kind"])
            where = namespace if namespaced else ""
            driver += [Permission(v, group, resource, where) for v in OBJECT_VERBS]
            if body["kind"] == "Role":
                roles.append(role_grant(body, namespace))
        driver += [Permission(v, "", "secrets", namespace) for v in SECRET_VERBS]
        driver += [Permission(v, "coordination.k8s.io", "leases", namespace)
                   for v in LEASE_VERBS]
        for resource in ("pods", "events"):
            driver += [Permission(v, "", resource, namespace) for v in READ_VERBS]
        # The namespace's own object: the API server names it as the namespace it is, so a
        # RoleBinding in it grants these once it exists. Created only when it is missing.
        namespace_verbs = ["get", "patch"]
        if self._namespace_unless_forbidden() is None:
            namespace_verbs.append("create")
        driver += [Permission(v, "", "namespaces", namespace, namespace)
                   for v in namespace_verbs]
        purge = (Permission("delete", "", "namespaces", namespace, namespace),)
        return NeededRights(tuple(dict.fromkeys(driver)), purge, tuple(roles))

    def _resource(self, api_version: str, kind: str) -> tuple[str, str, bool]:
        """(group, plural, namespaced) of a kind, as the API server's discovery names it."""
        path = self.objects.collection_path(api_version, kind, self.namespace)
        plural = path.rsplit("/", 1)[1]
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        return group, plural, path.endswith(f"/namespaces/{self.namespace}/{plural}")

    def _allowed(self, permission: Permission) -> bool:
        try:
            answer = self.objects.request(
                "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                body=permission.review())
        except ApiException as exc:
            raise CannotCheck(f"the API server refused a SelfSubjectAccessReview "
                              f"({exc.status}: {api_error(exc)})",
                              "check by hand: `kubectl auth can-i --list -n "
                              f"{self.namespace}`") from None
        return bool((answer.get("status") or {}).get("allowed"))

    def _user(self) -> str:
        """Who this user is to the API server (SelfSubjectReview), for the fix."""
        try:
            answer = self.objects.request(
                "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        except (ApiException, KubernetesUnreachable):
            return ""
        return str(((answer.get("status") or {}).get("userInfo") or {}).get("username") or "")

    # -- storage --

    def storage_class_check(self) -> Finding:
        claims = volume_claims(self.manifests)
        if not claims:
            return Finding.ok("not needed: the platform has no persistent volumes")
        summary = (f"{sum(c.count for c in claims)} volume claims "
                   f"({human_bytes(sum(c.size * c.count for c in claims))})")
        wanted = sorted({c.storage_class for c in claims})
        findings = [self._storage_class(name, summary) for name in wanted]
        for status in ("fail", "warn"):
            for found in findings:
                if found.status == status:
                    return found
        return Finding.ok("; ".join(f.text for f in findings))

    def _storage_class(self, name: str, summary: str) -> Finding:
        if name:
            found = self.objects.get(ObjectRef("storage.k8s.io/v1", "StorageClass", name, None))
            if found is None:
                known = self._storage_class_names()
                return Finding.fail(
                    f"StorageClass {name} does not exist; the platform's {summary} name it",
                    "set target.kubernetes.storage_class to one the cluster has"
                    + (f" ({', '.join(known)})" if known else "")
                    + ", or leave it empty for the cluster's default")
            return Finding.ok(f"StorageClass {name} (provisioner "
                              f"{found.get('provisioner', '?')}) for the {summary}")
        classes = self.objects.list("storage.k8s.io/v1", "StorageClass", None)
        defaults = [c for c in classes if any(
            (c["metadata"].get("annotations") or {}).get(key) == "true" for key in DEFAULT_CLASS)]
        if not defaults:
            names = _names(classes)
            return Finding.fail(
                f"the cluster has no default StorageClass, and target.kubernetes.storage_class "
                f"is empty: the platform's {summary} would stay Pending",
                "set target.kubernetes.storage_class to one the cluster has"
                + (f" ({', '.join(names)})" if names else " (it has none: install a "
                   "provisioner)")
                + ", or mark one as the default (annotation "
                "storageclass.kubernetes.io/is-default-class=true)")
        chosen = defaults[0]["metadata"]["name"]
        return Finding.ok(f"the cluster's default StorageClass {chosen} for the {summary}")

    def _storage_class_names(self) -> list[str]:
        try:
            return _names(self.objects.list("storage.k8s.io/v1", "StorageClass", None))
        except ObjectRefused:
            return []

    # -- the namespace and the lock --

    @cached_property
    def _namespace_object(self) -> dict[str, Any] | None:
        return self.objects.get(ObjectRef("v1", "Namespace", self.namespace, None))

    def _namespace_unless_forbidden(self) -> dict[str, Any] | None:
        try:
            return self._namespace_object
        except ObjectRefused:  # the permissions check reports that `get namespaces` is denied
            return None

    def namespace_check(self) -> Finding:
        return namespace_finding(self._namespace_object, self.namespace, self.target.name)

    def lock_check(self) -> Finding:
        name = SecretLedgerStore(self.objects.api, self.namespace, self.target.name).lease_name
        found = self.objects.get(ObjectRef("coordination.k8s.io/v1", "Lease", name,
                                           self.namespace))
        return lock_finding(found, name, self.namespace)

    # -- images --

    def registry_check(self) -> Finding:
        from heliostat.oci_registry import Registry, RegistryError, registry_host

        registry = str(self.target.config.values["images"]["registry"])
        if not registry:
            return Finding.ok("not used: images.registry is empty, so the nodes pull each "
                              "image from where its reference says")
        host = registry_host(registry)
        try:
            api = Registry(host, timeout=REGISTRY_TIMEOUT).ping()
        except RegistryError as exc:
            return Finding.fail(str(exc), f"make {host} reachable (from the cluster's nodes "
                                "too), or correct images.registry in platform.yaml")
        return Finding.ok(f"{host} answers from this host ({api}); the nodes pull the "
                          f"platform's images from {registry}")

    def bundle_check(self) -> Finding:
        return bundle_state(self.bundle_file, self.target.model,
                            "the nodes pull the images from their registry",
                            "if the nodes pull the images from a registry").finding


# -- what the platform needs --

def rendered_objects(manifests: Mapping[str, str]) -> list[dict[str, Any]]:
    return [body for _, text in sorted(manifests.items())
            for body in yaml.safe_load_all(text) if body]


def role_grant(role: dict[str, Any], namespace: str) -> RoleGrant:
    """What a rendered Role grants: each rule's groups x resources x verbs, as RBAC reads
    it when it checks that whoever creates the Role holds them."""
    grants = [Permission(verb, group, resource, namespace)
              for rule in role.get("rules") or []
              for group in rule.get("apiGroups") or [""]
              for resource in rule.get("resources") or []
              for verb in rule.get("verbs") or []]
    name = role["metadata"]["name"]
    instead = (Permission("escalate", RBAC, "roles", namespace),
               Permission("bind", RBAC, "roles", namespace, name))
    return RoleGrant(name, tuple(dict.fromkeys(grants)), instead)


def volume_claims(manifests: Mapping[str, str]) -> list[Claim]:
    claims = []
    for body in rendered_objects(manifests):
        spec = body.get("spec") or {}
        owner = f"{body['kind'].lower()}/{body['metadata']['name']}"
        if body["kind"] == "PersistentVolumeClaim":
            templates, count = [spec], 1
        elif body["kind"] == "StatefulSet":
            templates = [t.get("spec") or {} for t in spec.get("volumeClaimTemplates") or []]
            count = int(spec.get("replicas", 1))
        else:
            continue
        for template in templates:
            size = ((template.get("resources") or {}).get("requests") or {}).get("storage")
            claims.append(Claim(owner, str(template.get("storageClassName") or ""),
                                parse_size(str(size)) if size else 0, count))
    return claims


# -- the rules --

def permissions_rule(needed: NeededRights, allowed: Mapping[Permission, bool],
                     namespace: str, user: str = "") -> Finding:
    """`N of M allowed`: M counts what the driver does and, for each Role the platform
    renders, the rights it grants (unless this user may `escalate` and `bind` instead).
    What only `uninstall --purge` needs is a warning when it is missing."""
    counted = list(needed.driver)
    for role in needed.roles:
        if not all(allowed.get(p, False) for p in role.instead):
            counted += role.grants
    counted = list(dict.fromkeys(counted))
    denied = [p for p in counted if not allowed.get(p, False)]
    who = f" for {user}" if user else ""
    found = f"{len(counted) - len(denied)} of {len(counted)} allowed in namespace {namespace}{who}"
    if denied:
        return Finding.fail(f"{found}; {_denied(needed, denied)}",
                            _grant_fix(denied, namespace, user))
    missing_purge = [p for p in needed.purge if not allowed.get(p, False)]
    if missing_purge:
        return Finding.warn(f"{found}; not allowed: {grouped(missing_purge)}, which only "
                            "`uninstall --purge` needs",
                            f"grant delete on namespace {namespace} for `uninstall --purge`, "
                            "or delete the namespace by other means when the time comes")
    return Finding.ok(found)


def _denied(needed: NeededRights, denied: Sequence[Permission]) -> str:
    """The driver's denied rights in full; those only a rendered Role's creation needs in
    full too once the driver has all it needs, else as a count (one thing at a time)."""
    driver = set(needed.driver)
    ours = [p for p in denied if p in driver]
    theirs = [p for p in denied if p not in driver]
    roles = ", ".join(r.name for r in needed.roles if set(r.grants) & set(theirs))
    why = (f"Role {roles} grants them, and RBAC lets only who holds them (or may escalate and "
           "bind roles) create it")
    if ours:
        text = f"denied: {grouped(ours)}"
        if theirs:
            text += f"; and {len(theirs)} more, as {why}"
        return text
    return f"denied, as {why}: {grouped(theirs)}"


def _grant_fix(denied: Sequence[Permission], namespace: str, user: str) -> str:
    subject = f"--user={user}" if user else "--user=USER"
    fix = (f"grant {user or 'this user'} these rights in namespace {namespace}: a Role with "
           "them (or a ClusterRole) and a RoleBinding to it, `kubectl create rolebinding "
           f"heliostat -n {namespace} --role=ROLE {subject}`")
    if any(p.resource == "namespaces" and p.verb == "create" for p in denied):
        fix += (f"; creating namespace {namespace} takes a ClusterRole and ClusterRoleBinding, "
                f"or create it first (`kubectl create namespace {namespace}`)")
    return fix


def grouped(permissions: Iterable[Permission], at_most: int = 10) -> str:
    """`get, list on pods, events; create on leases.coordination.k8s.io`: resources with
    the same denied verbs together, in the order first met."""
    verbs: dict[str, list[str]] = {}
    for p in permissions:
        label = (f"namespace {p.name}" if p.resource == "namespaces" and p.name
                 else p.resource_name + (f"/{p.name}" if p.name else ""))
        verbs.setdefault(label, []).append(p.verb)
    resources: dict[str, list[str]] = {}
    for label, listed in verbs.items():
        resources.setdefault(", ".join(sorted(listed, key=_verb_rank)), []).append(label)
    shown = []
    for listed, labels in resources.items():
        more = f" and {len(labels) - at_most} more" if len(labels) > at_most else ""
        shown.append(f"{listed} on {', '.join(labels[:at_most])}{more}")
    return "; ".join(shown)


def _verb_rank(verb: str) -> tuple[int, str]:
    return (VERB_ORDER.index(verb) if verb in VERB_ORDER else len(VERB_ORDER), verb)


def namespace_finding(namespace: dict[str, Any] | None, name: str, platform: str) -> Finding:
    if namespace is None:
        return Finding.ok(f"{name} does not exist yet; install creates it, labelled as "
                          f"platform {platform}'s")
    if (namespace.get("status") or {}).get("phase") == "Terminating":
        return Finding.fail(f"{name} is being deleted (Terminating); nothing can be created "
                            "in it until it is gone",
                            f"wait until it is gone (`kubectl get namespace {name}`), then "
                            "install")
    labels = namespace["metadata"].get("labels") or {}
    if labels.get(MANAGED_BY) == "heliostat":
        owner = labels.get(PART_OF, "")
        if owner == platform:
            return Finding.ok(f"{name} exists, made by heliostat for platform {platform}")
        return Finding.warn(f"{name} exists and is platform {owner or '?'}'s, made by heliostat",
                            "give this platform a namespace of its own (target.kubernetes."
                            "namespace or --namespace): `uninstall --purge` of either would "
                            "delete the other with the namespace")
    return Finding.warn(f"{name} exists and was not made by heliostat (no "
                        f"{MANAGED_BY}=heliostat label); install labels it as platform "
                        f"{platform}'s and adds its objects beside what is there",
                        "if others use this namespace, give the platform one of its own "
                        "(target.kubernetes.namespace or --namespace): `uninstall --purge` "
                        "deletes the namespace with everything in it")


def lock_finding(found: dict[str, Any] | None, name: str, namespace: str) -> Finding:
    """Who holds the lock, read from its Lease (as SecretLedgerStore writes it)."""
    where = f"Lease {namespace}/{name}"
    if found is None:
        return Finding.ok(f"not held (no {where})")
    holder_identity = (found.get("spec") or {}).get("holderIdentity")
    if not holder_identity:
        return Finding.ok(f"not held ({where} has no holder)")
    remove = (f"if no heliostat command is running, delete it (`kubectl delete lease {name} "
              f"-n {namespace}`)")
    text = (found["metadata"].get("annotations") or {}).get(LEASE_ANNOTATION)
    try:
        if text is None:
            raise ValueError(f"it has no {LEASE_ANNOTATION} annotation")
        lease = Lease.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError) as exc:
        return Finding.fail(str(LedgerCorrupt(where, str(exc))), remove)
    if lease.token != holder_identity:
        return Finding.fail(str(LedgerCorrupt(where, "its holderIdentity is not the token of "
                                              f"its {LEASE_ANNOTATION} annotation")), remove)
    return lease_rule(lease)


def connection_error(error: urllib3.exceptions.HTTPError) -> str:
    """The reason under urllib3's wrapping (`[Errno 111] Connection refused`), without the
    object addresses and retry counts around it."""
    cause: Any = getattr(error, "reason", None) or error
    # Without `<...HTTPSConnection object at 0x...>: ` or `HTTPSConnection(host=...): `
    text = _CONNECTION_PREFIX.sub("", str(cause))
    return text if len(text) <= 200 else text[:197] + "..."


def _names(items: Sequence[dict[str, Any]]) -> list[str]:
    return sorted(i["metadata"]["name"] for i in items)
