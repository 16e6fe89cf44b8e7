"""A platform whose target is a Kubernetes cluster: its rendered objects, and the kubernetes
driver on the cluster of a kubeconfig context, in the platform's namespace."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heliostat.problems import InvalidInput
from heliostat.target import RenderedPlatform, rendered_files

if TYPE_CHECKING:  # the kubernetes package loads only when a command needs it
    from heliostat.access import Access
    from heliostat.apply import Change
    from heliostat.doctor import Preflight
    from heliostat.drivers.kubernetes import KubernetesDriver
    from heliostat.ledger import Origin


@dataclass(frozen=True)
class KubernetesTarget(RenderedPlatform):
    kubeconfig: str = ""  # empty: $KUBECONFIG, else ~/.kube/config
    context: str = ""  # empty: the kubeconfig's current context
    force_conflicts: bool = False
    bundle_file: Path | None = None  # `--bundle`: its images' digests are pinned

    @property
    def namespace(self) -> str:
        return str(self.model.settings["namespace"])

    @cached_property
    def image_digests(self) -> dict[str, str]:
        """reference -> digest that the rendered objects pin their images to, when the
        cluster pulls from `images.registry`: the bundle's (`--bundle`), else those of the
        deployed revision, so an upgrade without the bundle keeps what runs."""
        if not self.model.values["images"]["registry"]:
            return {}
        if self.bundle_file is not None:
            from heliostat.bundle.registry_push import platform_digests

            return platform_digests(self.bundle_file, self.model)
        from heliostat.ledger import Ledger

        deployed = Ledger(self.driver.ledger_store()).last_deployed()
        return dict(deployed.images) if deployed is not None else {}

    @cached_property
    def manifests(self) -> dict[str, str]:
        """What `heliostat render` writes for this config (and this bundle)."""
        from heliostat.model import pin_images

        return rendered_files(pin_images(self.model, self.image_digests))

    def receive_images(self, bundle_file: Path, show: Callable[[str], None]) -> None:
        """Push the bundle's images of this platform to `images.registry`, for the
        cluster's nodes to pull."""
        from heliostat.bundle.catalog_images import model_images
        from heliostat.bundle.registry_push import push_images

        registry = self.model.values["images"]["registry"]
        if not registry:
            document = self.config.document
            raise InvalidInput.single(
                document.file, "a Kubernetes cluster pulls its images from a registry: set "
                "`images.registry` to one its nodes reach, and `--bundle` pushes the "
                "bundle's images there", line=document.line_of(("images", "registry")),
                path="images.registry")
        show(f"pushing images from {bundle_file} to {registry}")
        summary = push_images(bundle_file, registry, model_images(self.model),
                              lambda name, what: show(f"  {name} {what}"))
        show(f"images: {len(summary['pushed'])} pushed "
             f"({summary['bytes_sent'] / 1e6:.0f} MB sent), "
             f"{len(summary['already_present'])} already there ({summary['seconds']}s)")

    @cached_property
    def driver(self) -> KubernetesDriver:
        from heliostat.drivers.kubernetes import KubernetesDriver
        from heliostat.drivers.kubernetes_api import connect

        return KubernetesDriver(self.name, self.namespace,
                                connect(self.kubeconfig, self.context),
                                force_conflicts=self.force_conflicts)

    def preflight(self, bundle_file: Path | None = None) -> Preflight:
        """`heliostat doctor`'s checks of this target (for `bundle_file` too, if given).
        They need no connection: a cluster that cannot be reached is one of their findings."""
        from heliostat.drivers.kubernetes_doctor import KubernetesDoctor

        return KubernetesDoctor(self, bundle_file)

    def change(self, description: str, manifests: dict[str, str] | None = None,
               config: dict[str, Any] | None = None, origin: Origin = "cli",
               bundle: dict[str, str] | None = None) -> Change:
        """A change for `Applier.run`, with the platform's secrets made in its namespace
        first (the pods mount them by name)."""
        from heliostat.apply import Change
        from heliostat.drivers.kubernetes_secrets import ensure_secrets

        driver = self.driver  # made here, not by two threads at once

        def make_secrets() -> dict[str, str]:
            driver.ensure_namespace()
            return ensure_secrets(driver.objects, self.namespace, self.name,
                                  self.model.secrets)

        # The API server makes them while the manifests render (which needs no value).
        with ThreadPoolExecutor(1, thread_name_prefix="heliostat-secrets") as pool:
            made = pool.submit(make_secrets)
            files = self.manifests if manifests is None else manifests
            secrets = made.result()
        return Change(description=description, manifests=files,
                      config=self.config.values if config is None else config,
                      secrets=secrets, origin=origin, **(bundle or {}),
                      images=self.image_digests if manifests is None
                      else pinned_digests(manifests))

    def secret_value(self, name: str) -> str | None:
        """A secret's value, for `status --show-secret`; None before the first install."""
        from heliostat.drivers.kubernetes_secrets import read_secret

        return read_secret(self.driver.objects, self.namespace, name)

    def access(self) -> Access:
        """The URLs people reach this platform at, through its Ingress."""
        from heliostat.access import Access, platform_access

        # The logins are Secrets of the namespace, not files on a host.
        return Access(platform_access(self.model, Path()).urls, ())


_PINNED_IMAGE = re.compile(r"""\bimage: ['"]?([^\s'"@]+)@(sha256:[0-9a-f]{64})""")


def pinned_digests(manifests: dict[str, str]) -> dict[str, str]:
    """reference -> digest of the images these manifests pin (a rollback's revision): what
    the ledger records as the revision's images, for the next upgrade to keep."""
    return {match[1]: match[2] for text in manifests.values()
            for match in _PINNED_IMAGE.finditer(text)}
