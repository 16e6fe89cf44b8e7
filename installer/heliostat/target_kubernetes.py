"""A platform whose target is a Kubernetes cluster: its rendered objects, and the kubernetes
driver on the cluster of a kubeconfig context, in the platform's namespace."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from heliostat.target import RenderedPlatform

if TYPE_CHECKING:  # the kubernetes package loads only when a command needs it
    from heliostat.access import Access
    from heliostat.apply import Change
    from heliostat.drivers.kubernetes import KubernetesDriver
    from heliostat.ledger import Origin


@dataclass(frozen=True)
class KubernetesTarget(RenderedPlatform):
    kubeconfig: str = ""  # empty: $KUBECONFIG, else ~/.kube/config
    context: str = ""  # empty: the kubeconfig's current context
    force_conflicts: bool = False

    @property
    def namespace(self) -> str:
        return str(self.model.settings["namespace"])

    @cached_property
    def driver(self) -> KubernetesDriver:
        from heliostat.drivers.kubernetes import KubernetesDriver
        from heliostat.drivers.kubernetes_api import connect

        return KubernetesDriver(self.name, self.namespace,
                                connect(self.kubeconfig, self.context),
                                force_conflicts=self.force_conflicts)

    def change(self, description: str, manifests: dict[str, str] | None = None,
               config: dict[str, Any] | None = None, origin: Origin = "cli",
               bundle: dict[str, str] | None = None) -> Change:
        """A change for `Applier.run`, with the platform's secrets made in its namespace
        first (the pods mount them by name)."""
        from heliostat.apply import Change
        from heliostat.drivers.kubernetes_secrets import ensure_secrets

        self.driver.ensure_namespace()
        secrets = ensure_secrets(self.driver.objects, self.namespace, self.name,
                                 self.model.secrets)
        return Change(description=description,
                      manifests=self.manifests if manifests is None else manifests,
                      config=self.config.values if config is None else config,
                      secrets=secrets, images={}, origin=origin, **(bundle or {}))

    def secret_value(self, name: str) -> str | None:
        """A secret's value, for `status --show-secret`; None before the first install."""
        from heliostat.drivers.kubernetes_secrets import read_secret

        return read_secret(self.driver.objects, self.namespace, name)

    def access(self) -> Access:
        """The URLs people reach this platform at, through its Ingress."""
        from pathlib import Path

        from heliostat.access import Access, platform_access

        # The logins are Secrets of the namespace, not files on a host.
        return Access(platform_access(self.model, Path()).urls, ())
