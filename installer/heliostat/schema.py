"""The JSON Schema of platform.yaml: assembled, checked against, and used for defaults.

The base schema (`platform.schema.yaml`) is completed with one fragment per module
(the `config:` key of `bundles/<module>/module.yaml`) under `modules.<module>`.
"""

from __future__ import annotations

import copy
import difflib
from functools import cache
from pathlib import Path
from typing import Any

from heliostat.catalog import Module, load_modules
from heliostat.problems import Problem
from heliostat.yaml_source import YamlDocument, format_path, load_yaml_file

BASE_SCHEMA = Path(__file__).parent / "platform.schema.yaml"


@cache
def platform_schema() -> dict[str, Any]:
    schema = load_yaml_file(BASE_SCHEMA, "platform.schema.yaml", trusted=True).data
    modules = schema["properties"]["modules"]["properties"]
    for module in load_modules():
        modules[module.name] = module_section_schema(module)
        schema["$defs"].update(module.config_defs)
    return schema


def module_section_schema(module: Module) -> dict[str, Any]:
    section = copy.deepcopy(module.config_schema)
    section.setdefault("type", "object")
    section.setdefault("additionalProperties", False)
    section["description"] = module.description
    properties = section.setdefault("properties", {})
    if not module.always_enabled:
        properties["enabled"] = {
            "description": f"Run the {module.name} module.",
            "type": "boolean",
            "default": module.enabled_by_default,
        }
        # Keep `enabled` first in generated documentation.
        section["properties"] = {"enabled": properties.pop("enabled"), **properties}
    return section


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(platform_schema())


def validate(document: YamlDocument) -> list[Problem]:
    """Every way `document` breaks the schema, each with its line and key path."""
    from jsonschema.exceptions import best_match

    problems = []
    for error in _validator().iter_errors(document.data):
        if error.context:  # anyOf/oneOf: report the branch that came closest
            error = best_match([error]) or error
        path = tuple(error.absolute_path)
        if error.schema is False and list(error.schema_path)[-1:] == ["properties"]:
            # jsonschema reports a `false` property schema at the parent; find the key.
            parent = _at(document.data, path)
            key = next((k for k, v in parent.items() if v is error.instance), None)
            path = path if key is None else (*path, key)
        message = _message(error, document.data, path)
        if error.validator == "additionalProperties":
            for extra in _extra_keys(error):
                problems.append(Problem(document.file, document.line_of((*path, extra)),
                                        format_path((*path, extra)), _unknown_key(error, extra)))
            continue
        problems.append(Problem(document.file, document.line_of(path), format_path(path), message))
    return sorted(set(problems), key=lambda p: (p.line or 0, p.path, p.message))


def _extra_keys(error: Any) -> list[str]:
    allowed = set(error.schema.get("properties", {}))
    return sorted(k for k in error.instance if k not in allowed)


def _unknown_key(error: Any, key: str) -> str:
    allowed = list(error.schema.get("properties", {}))
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    if not allowed:
        return "unknown key"
    return f"unknown key ({hint}expected one of: {', '.join(allowed)})"


def _message(error: Any, data: Any, path: tuple[Any, ...]) -> str:
    if error.schema is False:
        parent = _at(data, path[:-1])
        if isinstance(parent, dict):  # only the stores' mode branches forbid keys
            mode = parent.get("mode", "internal")
            other = "external" if mode == "internal" else "internal"
            return f"not allowed with mode {mode}: this setting applies to mode {other} only"
        return "not allowed here"
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "pattern":
        return f"{error.instance!r} is not valid: {_pattern_hint(error)}"
    if error.validator == "const":
        return f"{error.instance!r} is not supported: expected {error.validator_value!r}"
    return error.message


def _pattern_hint(error: Any) -> str:
    description = error.schema.get("description")
    if description:
        return description.split(". ")[0].rstrip(".")
    return f"must match {error.validator_value}"


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def apply_defaults(data: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of `data` with every omitted key that has a default filled in.

    An omitted object that declares properties (and requires none) is created empty and
    filled in turn, so `modules.airflow.workers.replicas` gets its default even when
    `modules` is absent.
    """
    schema = platform_schema() if schema is None else schema
    return _fill(copy.deepcopy(data), schema, schema)


def _fill(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    schema = _resolve(schema, root)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_fill(item, schema["items"], root) for item in value]
    if not isinstance(value, dict):
        return value
    for key, sub in _effective_properties(schema, value, root).items():
        if not isinstance(sub, dict):
            continue
        sub = _resolve(sub, root)
        if key not in value:
            if "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            elif _fillable_object(sub):
                value[key] = {}
            else:
                continue
        value[key] = _fill(value[key], sub, root)
    return value


def _fillable_object(schema: dict[str, Any]) -> bool:
    """An omitted object we may create: it has defaults and nothing it insists on."""
    return (schema.get("type") == "object" and bool(schema.get("properties"))
            and not any(k in schema for k in ("required", "oneOf", "anyOf")))


def _effective_properties(schema: dict[str, Any], value: dict[str, Any],
                          root: dict[str, Any]) -> dict[str, Any]:
    """`properties`, less those an `if/then/else` branch forbids for this value.

    An internal store must not get an external store's defaults (and vice versa).
    """
    from jsonschema import Draft202012Validator

    properties = dict(schema.get("properties", {}))
    for part in schema.get("allOf", ()):
        part = _resolve(part, root)
        if "if" not in part:
            continue
        holds = Draft202012Validator(part["if"]).is_valid(value)
        branch = part.get("then" if holds else "else") or {}
        for key, sub in branch.get("properties", {}).items():
            if sub is False:
                properties[key] = False
    return properties


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not ref:
        return schema
    target = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return _resolve(merged, root)


def markdown_reference() -> str:
    """The reference of every key of platform.yaml, as Markdown (docs/platform-yaml.md)."""
    root = platform_schema()
    lines = [
        "# platform.yaml reference",
        "",
        "<!-- Generated by `heliostat schema --markdown`; do not edit by hand. -->",
        "",
        _one_line(root["description"]),
        "",
        "| key | type | default | description |",
        "| --- | --- | --- | --- |",
    ]
    _markdown_rows(root, root, (), lines)
    return "\n".join(lines) + "\n"


def _markdown_rows(schema: dict[str, Any], root: dict[str, Any], path: tuple[str, ...],
                   lines: list[str]) -> None:
    for key, sub in schema.get("properties", {}).items():
        if not isinstance(sub, dict):
            continue
        sub = _resolve(sub, root)
        key_path = (*path, key)
        default = f"`{_json(sub['default'])}`" if "default" in sub else ""
        description = _one_line(sub.get("description", ""))
        lines.append(f"| `{'.'.join(key_path)}` | {_type_of(sub)} | {default} | {description} |")
        _markdown_rows(sub, root, key_path, lines)


def _type_of(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return " \\| ".join(f"`{_json(v)}`" for v in schema["enum"])
    kind = schema.get("type", "")
    if kind == "array":
        return f"list of {schema.get('items', {}).get('type', 'value')}"
    if kind == "integer" and ("minimum" in schema or "maximum" in schema):
        return f"integer {schema.get('minimum', '')}…{schema.get('maximum', '')}"
    return str(kind)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
