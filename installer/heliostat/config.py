"""platform.yaml: loaded, validated against the schema, and completed with defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heliostat import schema
from heliostat.catalog import load_modules
from heliostat.problems import InvalidInput, Problem
from heliostat.yaml_source import YamlDocument, format_path, load_yaml_file

DEFAULT_CONFIG = Path(__file__).parent / "default-platform.yaml"


@dataclass(frozen=True)
class PlatformConfig:
    """A valid platform.yaml with every default filled in."""

    values: dict[str, Any]
    document: YamlDocument

    @property
    def name(self) -> str:
        return self.values["name"]

    @property
    def profile(self) -> str:
        return self.values["profile"]

    def enabled_modules(self) -> list[str]:
        """Enabled modules, in catalog order."""
        modules = self.values["modules"]
        return [m.name for m in load_modules() if modules.get(m.name, {}).get("enabled", True)]

    def with_profile(self, profile: str) -> PlatformConfig:
        return PlatformConfig({**self.values, "profile": profile}, self.document)


def load_config(path: Path | None) -> PlatformConfig:
    """Load `path` (or the embedded default when None); raise InvalidInput on any problem."""
    if path is None:
        document = load_yaml_file(DEFAULT_CONFIG, "<embedded default platform.yaml>")
    else:
        document = load_yaml_file(path, str(path))
    return config_from_document(document)


def config_from_document(document: YamlDocument) -> PlatformConfig:
    if not isinstance(document.data, dict):
        raise InvalidInput.single(document.file, f"expected a mapping of settings at the top, "
                                  f"not {_kind(document.data)}", line=1)
    problems = schema.validate(document)
    if problems:
        raise InvalidInput(problems)
    config = PlatformConfig(schema.apply_defaults(document.data), document)
    problems = _module_requirements(config)
    if problems:
        raise InvalidInput(problems)
    return config


def _module_requirements(config: PlatformConfig) -> list[Problem]:
    enabled = set(config.enabled_modules())
    problems = []
    for module in load_modules():
        if module.name not in enabled:
            continue
        for required in module.requires:
            if required not in enabled:
                path = ("modules", required, "enabled")
                problems.append(Problem(
                    config.document.file, config.document.line_of(path), format_path(path),
                    f"false, but module {module.name!r} needs {required!r}: enable {required}"
                    f" or disable {module.name}"))
    return problems


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean"}.get(type(value), type(value).__name__)
