"""Render the neutral model with a profile's templates into a target's manifests.

A profile's template emits a YAML stream, one document per target object (a whole
Compose file, a Kubernetes object, a Marathon group). Parsing it back here proves the
template produced well-formed YAML and lets us write canonical, deterministic files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from heliostat.catalog import load_profile
from heliostat.model import SECRETS_DIR, CatalogError, PlatformModel
from heliostat.templating import TemplateFailure, make_environment, render_file


@dataclass(frozen=True)
class Manifest:
    """One target object and the file it is written to."""

    kind: str
    name: str
    body: dict[str, Any]
    filename: str

    def text(self) -> str:
        if self.filename.endswith(".json"):
            return json.dumps(self.body, indent=2, ensure_ascii=False) + "\n"
        return yaml_text(self.body)


# libyaml when present (it is, in the zipapp): parsing and writing YAML dominate a render.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# No line is folded: libyaml folds long scalars where PyYAML's own emitter does not, and
# unfolded, both write the same text (a test holds them to it).
UNFOLDED = 1 << 30


def yaml_text(body: Any, dumper: type = _Dumper) -> str:
    """A manifest's YAML: keys in the template's order, block style, unfolded lines."""
    return yaml.dump(body, Dumper=dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=UNFOLDED)


@cache
def _profile_environment(directory: Path) -> Any:
    return make_environment(directory)


def render_manifests(model: PlatformModel) -> list[Manifest]:
    profile = load_profile(model.profile)
    env = _profile_environment(profile.directory)
    context = {
        "model": model,
        "platform": {"name": model.name, "version": model.version, **model.settings},
        "values": model.values,
        "services": model.services,
        "routes": model.routes,
        "secrets": model.secrets,
        "secrets_dir": SECRETS_DIR,
        "profile": profile.settings,
    }
    template = profile.settings["template"]
    try:
        text = render_file(env, template, context)
    except TemplateFailure as exc:
        raise CatalogError(f"profiles/{profile.name}/{exc}") from None
    try:
        documents = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        raise CatalogError(f"profiles/{profile.name}/{template} produced invalid YAML: {exc}"
                           ) from None
    output = profile.settings["output"]
    manifests = []
    for document in documents:
        if output.get("envelope"):  # {kind, name, body}: the body is the target's object
            kind, name, body = document["kind"], document["name"], document["body"]
        else:
            body = document
            kind = body.get("kind", profile.name)
            name = body.get("metadata", {}).get("name") or model.name
        filename = output["file"].format(kind=kind.lower(), name=name)
        manifests.append(Manifest(kind, name, body, filename))
    filenames = [m.filename for m in manifests]
    if len(set(filenames)) != len(filenames):
        raise CatalogError(f"profiles/{profile.name}: two objects would be written to one file")
    return manifests


def write_manifests(manifests: list[Manifest], directory: Path) -> list[Path]:
    """Write each manifest atomically; remove stale files a previous render left behind."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for manifest in manifests:
        path = directory / manifest.filename
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(manifest.text(), encoding="utf-8")
        os.replace(temporary, path)
        written.append(path)
    marker = directory / ".heliostat-render"
    previous = marker.read_text().split() if marker.exists() else []
    for stale in set(previous) - {m.filename for m in manifests}:
        (directory / stale).unlink(missing_ok=True)
    marker.write_text("".join(f"{m.filename}\n" for m in manifests))
    return written
