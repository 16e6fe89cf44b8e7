"""The module catalog (`bundles/*/module.yaml`) and the target profiles (`profiles/*/`).

Both are data shipped with the installer: in the source tree they live at the
repository root; in the zipapp they are embedded under `heliostat/_data/`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from heliostat.problems import InvalidInput
from heliostat.yaml_source import YamlDocument, load_yaml_file

MODULE_ORDER = ("core", "clickstream", "pilot", "commander", "monitoring", "airflow")


def data_root() -> Path:
    embedded = Path(__file__).parent / "_data"
    if embedded.is_dir():
        return embedded
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Module:
    """One platform module as `bundles/<name>/module.yaml` describes it."""

    name: str
    description: str
    always_enabled: bool
    enabled_by_default: bool
    requires: tuple[str, ...]
    uses: tuple[str, ...]
    config_schema: dict[str, Any]
    config_defs: dict[str, Any]
    secrets: dict[str, dict[str, Any]]
    services: dict[str, Any]
    directory: Path
    source: YamlDocument = field(repr=False, compare=False)


@dataclass(frozen=True)
class Profile:
    """One target profile: how the neutral model maps to that target's manifests."""

    name: str
    description: str
    settings: dict[str, Any]
    directory: Path


@cache
def load_modules() -> tuple[Module, ...]:
    bundles = data_root() / "bundles"
    found = sorted(p.name for p in bundles.iterdir() if (p / "module.yaml").is_file())
    unknown = set(found) - set(MODULE_ORDER)
    if unknown:
        raise RuntimeError(f"bundles/ has modules heliostat does not know: {sorted(unknown)}")
    return tuple(_load_module(bundles / name) for name in MODULE_ORDER if name in found)


def module_named(name: str) -> Module:
    for module in load_modules():
        if module.name == name:
            return module
    raise KeyError(name)


def _load_module(directory: Path) -> Module:
    doc = load_yaml_file(directory / "module.yaml", f"bundles/{directory.name}/module.yaml",
                         trusted=True)
    data = doc.data
    if data.get("module") != directory.name:
        raise InvalidInput.single(doc.file, f"module: must be {directory.name!r}", line=1)
    return Module(
        name=directory.name,
        description=data["description"],
        always_enabled=data.get("always_enabled", False),
        enabled_by_default=data.get("enabled_by_default", True),
        requires=tuple(data.get("requires", ())),
        uses=tuple(data.get("uses", ())),
        config_schema=data.get("config", {"type": "object", "properties": {}}),
        config_defs=data.get("$defs", {}),
        secrets=data.get("secrets", {}),
        services=data.get("services", {}),
        directory=directory,
        source=doc,
    )


@cache
def load_profile(name: str) -> Profile:
    directory = data_root() / "profiles" / name
    doc = load_yaml_file(directory / "profile.yaml", f"profiles/{name}/profile.yaml",
                         trusted=True)
    return Profile(name=name, description=doc.data["description"], settings=doc.data,
                   directory=directory)
