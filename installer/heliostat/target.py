"""From platform.yaml to what the apply commands work on: the rendered manifests and the
driver of the platform's target.

Compose targets are applied on the local engine, or on the engine of an SSH host by the copy
of heliostat the ssh transport runs there; Kubernetes targets through the cluster's API
(heliostat.target_kubernetes); Marathon only renders so far.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heliostat.config import PlatformConfig
from heliostat.model import PlatformModel, build_model
from heliostat.problems import InvalidInput
from heliostat.render import render_manifests

if TYPE_CHECKING:  # the driver and the docker package load only when a command needs them
    from heliostat.access import Access
    from heliostat.apply import Change
    from heliostat.doctor import Preflight
    from heliostat.drivers.compose import ComposeDriver
    from heliostat.ledger import Origin


def rendered_files(model: PlatformModel) -> dict[str, str]:
    """file name -> text, as `heliostat render` writes them."""
    return {m.filename: m.text() for m in render_manifests(model)}


@dataclass(frozen=True)
class RenderedPlatform:
    """What every target starts from: the config, its model and the rendered manifests."""

    config: PlatformConfig
    model: PlatformModel

    @cached_property
    def manifests(self) -> dict[str, str]:
        """Exactly the files `heliostat render` writes for this config."""
        return rendered_files(self.model)

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class Target(RenderedPlatform):
    """A platform on a Docker host (profile: compose)."""

    state_dir: Path  # the platform's own: `<state dir>/<name>`

    @cached_property
    def driver(self) -> ComposeDriver:
        from heliostat.drivers.compose import ComposeDriver
        from heliostat.drivers.compose_engine import connect

        return ComposeDriver(self.name, self.state_dir, connect())

    def preflight(self, bundle_file: Path | None = None) -> Preflight:
        """`heliostat doctor`'s checks of this target (for `bundle_file` too, if given).
        They need no connection: a target that cannot be reached is one of their findings."""
        from heliostat.drivers.compose_doctor import ComposeDoctor

        return ComposeDoctor(self, bundle_file)

    def change(self, description: str, manifests: dict[str, str] | None = None,
               config: dict[str, Any] | None = None, origin: Origin = "cli",
               bundle: dict[str, str] | None = None) -> Change:
        """A change to this platform for `Applier.run`: this config's manifests (or a
        revision's, for a rollback), its secrets (generated on first use) and the ids of
        the images it runs. `bundle` is what the ledger records of a loaded bundle."""
        from heliostat.apply import Change
        from heliostat.drivers.compose_secrets import ensure_secrets

        secrets = ensure_secrets(self.model.secrets, self.state_dir)
        return Change(description=description,
                      manifests=self.manifests if manifests is None else manifests,
                      config=self.config.values if config is None else config,
                      secrets=secrets, images=self.image_ids(), origin=origin,
                      **(bundle or {}))

    def receive_images(self, bundle_file: Path, show: Callable[[str], None]) -> None:
        """Load the bundle's images the engine lacks into it."""
        from heliostat.bundle import load_into_engine

        show(f"loading images from {bundle_file}")
        reported: set[str] = set()

        def loaded(name: str, done: int, total: int) -> None:
            if total and done >= total and name not in reported:
                reported.add(name)
                show(f"  {name} loaded")

        summary = load_into_engine(bundle_file, self.driver.engine.client, progress=loaded)
        show(f"images: {len(summary['loaded'])} loaded, {len(summary['already_present'])} "
             f"already present ({summary['seconds']}s)")

    def access(self) -> Access:
        """The URLs people reach this platform at and where its login secrets are."""
        from heliostat.access import platform_access
        from heliostat.drivers.compose_secrets import secrets_directory

        return platform_access(self.model, secrets_directory(self.state_dir))

    def secret_value(self, name: str) -> str | None:
        """A secret's value, for `status --show-secret`; None before the first install."""
        from heliostat.drivers.compose_secrets import read_secret

        return read_secret(self.state_dir, name)

    def image_ids(self) -> dict[str, str]:
        """reference -> image id, for the images the engine holds (the rest fail at apply)."""
        import docker.errors

        references = sorted({s.image_ref for s in self.model.services}
                            | {c["image_ref"] for s in self.model.services for c in s.sidecars})
        ids = {}
        for reference in references:
            with contextlib.suppress(docker.errors.DockerException):
                ids[reference] = self.driver.engine.client.images.get(reference).id
        return ids


def open_target(config: PlatformConfig, state_dir: Path | None = None, *,
                kubeconfig: str = "", context: str = "", namespace: str = "",
                force_conflicts: bool = False, bundle: Path | None = None) -> Any:
    """The target of `config`. For this command only: `state_dir` moves the directory that
    holds every platform's ledger and secrets (target.compose.state_dir); `kubeconfig`,
    `context` and `namespace` replace target.kubernetes' (as kubectl's flags do); on
    Kubernetes, the images of `bundle` are the ones pinned."""
    where = config.document.file
    if config.profile == "kubernetes":
        from heliostat.target_kubernetes import KubernetesTarget

        if namespace:  # the rendered objects name it: render with it
            values = copy.deepcopy(config.values)
            values["target"]["kubernetes"]["namespace"] = namespace
            config = PlatformConfig(values, config.document)
        kubernetes = config.values["target"]["kubernetes"]
        return KubernetesTarget(config, build_model(config),
                                kubeconfig=kubeconfig or kubernetes["kubeconfig"],
                                context=context or kubernetes["context"],
                                force_conflicts=force_conflicts, bundle_file=bundle)
    if config.profile != "compose":
        raise InvalidInput.single(where, f"{config.profile} platforms cannot be applied yet: "
                                  "heliostat installs onto Docker (profile: compose) and "
                                  "Kubernetes; `heliostat render` writes the manifests for "
                                  "the others",
                                  line=config.document.line_of(("profile",)), path="profile")
    compose = config.values["target"]["compose"]
    from heliostat.transports.local import is_local

    if not is_local(compose["host"]):
        # The commands of the CLI go over SSH before they get here (heliostat.cli_ssh).
        raise InvalidInput.single(where, f"{compose['host']}: this command does not go over "
                                  "SSH; run it on the Docker host (host: local)",
                                  line=config.document.line_of(("target", "compose", "host")),
                                  path="target.compose.host")
    if state_dir is not None:
        values = copy.deepcopy(config.values)
        values["target"]["compose"]["state_dir"] = str(Path(state_dir).absolute())
        config = PlatformConfig(values, config.document)
    base = Path(config.values["target"]["compose"]["state_dir"])
    return Target(config, build_model(config), base / config.name)
