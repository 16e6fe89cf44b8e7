"""What Commander knows of its platform, read through heliostat itself: the ledger, the
configuration of the deployed revision, the target built from it, and its status.

Every change starts from the last deployed revision's `config` (what `heliostat render`
would render for it), changes one setting — an image pin under `images.services` — and
is built into a `Change` by `Target.change`, exactly as the CLI builds its own.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from heliostat.config import PlatformConfig, config_from_document
from heliostat.ledger import Ledger, Revision, UnknownRevision
from heliostat.ledger_store import FileLedgerStore
from heliostat.model import build_model
from heliostat.target import Target, open_target
from heliostat.yaml_source import YamlDocument

# What an image update may name: a tag, a digest, or a whole reference (platform.schema).
IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}")
MAX_REVISION = 999_999  # the ledger's file names hold six digits
SELF = "commander"  # Commander's own service: it never replaces itself (see worker)


class Refused(Exception):
    """A request Commander cannot carry out as asked; `status` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class PlatformState:
    def __init__(self, name: str, state_dir: Path) -> None:
        self.name = name
        self.state_dir = state_dir
        self.ledger = Ledger(FileLedgerStore(state_dir))

    def deployed(self) -> Revision:
        last = self.ledger.last_deployed()
        if last is None or not last.manifests:
            raise Refused(409, f"platform {self.name} is not installed: no deployed revision "
                               "in its ledger; install it with `heliostat install`")
        return last

    def revision(self, number: int) -> Revision:
        if not 1 <= number <= MAX_REVISION:
            raise Refused(404, f"no revision {number}: revisions are numbered from 1")
        try:
            return self.ledger.revision(number)
        except UnknownRevision as exc:
            raise Refused(404, str(exc)) from None

    def config(self, values: dict[str, Any], source: str) -> PlatformConfig:
        """`values` (a revision's config) as a validated config; InvalidInput if not."""
        return config_from_document(YamlDocument(copy.deepcopy(values), source))

    def target(self, config: PlatformConfig) -> Target:
        # The ledger Commander reads is the one it changes: the state dir's parent is the
        # directory of every platform (target.compose.state_dir), mounted at its own path.
        return open_target(config, self.state_dir.parent)

    def commander_config(self) -> dict[str, Any]:
        """The deployed revision's `modules.commander` (groups, repositories…)."""
        last = self.ledger.last_deployed()
        values = last.config if last is not None else {}
        return dict((values.get("modules") or {}).get("commander") or {})

    def members(self, name: str, values: dict[str, Any]) -> tuple[str, ...]:
        """The services an image update of `name` (a service or group) changes: every one
        of its group that this platform runs. Never Commander itself."""
        found = self._members(name, values)
        if SELF in found:
            raise Refused(409, "Commander does not replace itself: upgrade it with the "
                               "heliostat CLI (images.services.commander in platform.yaml, "
                               "then `heliostat upgrade`)")
        return found

    def _members(self, name: str, values: dict[str, Any]) -> tuple[str, ...]:
        running = {s.name for s in build_model(self.config(values, "deployed")).services}
        groups = ((values.get("modules") or {}).get("commander") or {}).get("groups") or {}
        if name in groups:
            found = tuple(s for s in groups[name] if s in running)
            if not found:
                raise Refused(404, f"group {name} has no service that this platform runs")
            return found
        if name not in running:
            raise Refused(404, f"no service or group {name} on platform {self.name} "
                               f"(its services: {', '.join(sorted(running))})")
        for members in groups.values():
            if name in members:
                return tuple(s for s in members if s in running)
        return (name,)

    def with_image(self, values: dict[str, Any], services: tuple[str, ...],
                   image: str) -> dict[str, Any]:
        changed = copy.deepcopy(values)
        pins = changed.setdefault("images", {}).setdefault("services", {})
        for service in services:
            pins[service] = image
        return changed

    def image_change_config(self, services: tuple[str, ...], image: str,
                            source: str) -> PlatformConfig:
        """The deployed config with `services` on `image`, validated and modelled (so a
        bad pin is refused now, not half-way through an apply)."""
        if not IMAGE.fullmatch(image):
            raise Refused(400, f"image {image!r} is not a tag, a digest (sha256:<hex>) or "
                               "an image reference")
        config = self.config(self.with_image(self.deployed().config, services, image), source)
        build_model(config)
        return config

    def pinned(self, services: tuple[str, ...]) -> dict[str, str]:
        """What the deployed revision pins each of `services` to ('' for the bundle's)."""
        last = self.ledger.last_deployed()
        pins = ((last.config if last else {}).get("images") or {}).get("services") or {}
        return {s: pins.get(s, "") for s in services}


def describe_image(name: str, image: str) -> str:
    """`commander: image airflow@sha256:…`, `… image gateway:1.2`, `… image x=ref`."""
    if image.startswith("sha256:"):
        return f"commander: image {name}@{image}"
    if "/" not in image and ":" not in image and "@" not in image:
        return f"commander: image {name}:{image}"
    return f"commander: image {name}={image}"
