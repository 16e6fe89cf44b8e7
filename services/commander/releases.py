"""The ledger's revisions as the API shows them: secrets only as the hashes the ledger
keeps, and what changed between two revisions."""

from __future__ import annotations

import difflib
from dataclasses import asdict
from typing import Any

from heliostat.ledger import Revision


def summary(revision: Revision) -> dict[str, Any]:
    return {"revision": revision.number, "status": revision.status, "origin": revision.origin,
            "description": revision.description, "created_at": revision.created_at,
            "updated_at": revision.updated_at, "bundle_version": revision.bundle_version,
            "reason": revision.reason}


def detail(revision: Revision) -> dict[str, Any]:
    """Everything the ledger holds of it; its `config` and `secrets` carry hashes only."""
    document = asdict(revision)
    document["revision"] = document.pop("number")
    return document


def diff(old: Revision, new: Revision) -> dict[str, Any]:
    """From `old` to `new`: manifests as unified diffs, config by key path, images,
    and the secrets whose value changed (by their hash)."""
    manifests = {}
    for name in sorted(set(old.manifests) | set(new.manifests)):
        before, after = old.manifests.get(name, ""), new.manifests.get(name, "")
        if before != after:
            manifests[name] = "".join(difflib.unified_diff(
                before.splitlines(keepends=True), after.splitlines(keepends=True),
                f"revision-{old.number}/{name}", f"revision-{new.number}/{name}"))
    before_config, after_config = _flatten(old.config), _flatten(new.config)
    config = [{"path": path, "from": before_config.get(path), "to": after_config.get(path)}
              for path in sorted(set(before_config) | set(after_config))
              if before_config.get(path) != after_config.get(path)]
    images = [{"image": name, "from": old.images.get(name), "to": new.images.get(name)}
              for name in sorted(set(old.images) | set(new.images))
              if old.images.get(name) != new.images.get(name)]
    secrets = sorted(name for name in set(old.secrets) | set(new.secrets)
                     if old.secrets.get(name) != new.secrets.get(name))
    return {"from": old.number, "to": new.number, "manifests": manifests, "config": config,
            "images": images, "secrets_changed": secrets}


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{path}.{key}" if path else str(key)))
        return flat
    return {path: value}
