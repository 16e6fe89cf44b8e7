"""Jinja2 as heliostat uses it: for `{{ ... }}` values in module.yaml and for profiles.

A module.yaml value that is exactly one `{{ expression }}` keeps the expression's type
(`replicas: "{{ config.workers.replicas }}"` is an integer); any other string with
`{{` in it is rendered as text. Undefined names are errors, never empty strings.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jinja2

_WHOLE_EXPRESSION = re.compile(r"^\{\{(?P<expr>.*)\}\}$", re.DOTALL)
_UNITS_MIB = {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}


class TemplateFailure(Exception):
    """A template or expression could not be evaluated; the message says which and why."""


def quantity_mib(size: str) -> int:
    """`512Mi` -> 512, `2Gi` -> 2048: Marathon wants sizes as MiB numbers."""
    for unit, factor in _UNITS_MIB.items():
        if size.endswith(unit):
            return int(size[: -len(unit)]) * factor
    raise ValueError(f"not a size: {size!r}")


def compose_bytes(size: str) -> str:
    """`512Mi` -> `512m`: Compose's binary units."""
    return f"{quantity_mib(size)}m"


def dollars_escaped(value: Any) -> Any:
    """Compose interpolates `$` in every string; `$$` is how the spec writes a literal one."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [dollars_escaped(v) for v in value]
    if isinstance(value, dict):
        return {k: dollars_escaped(v) for k, v in value.items()}
    return value


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def make_environment(search_path: Path | None = None) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(search_path)) if search_path else None
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # output is YAML/JSON/config text, never HTML
    )
    env.filters.update(json=to_json, mib=quantity_mib, compose_bytes=compose_bytes,
                       merge=lambda a, b: {**a, **b}, shell_join=shlex.join,
                       dollars_escaped=dollars_escaped)
    return env


@cache
def _values_environment() -> jinja2.Environment:
    return make_environment()


@lru_cache(maxsize=4096)
def _compiled_value(value: str) -> Any:
    """A callable for one module.yaml value; compiling is the costly part, so it is kept."""
    env = _values_environment()
    whole = _WHOLE_EXPRESSION.match(value)
    if whole and "{{" not in whole.group("expr"):
        return env.compile_expression(whole.group("expr"), undefined_to_none=False)
    template = env.from_string(value)
    return lambda **context: template.render(context)


def evaluate_values(value: Any, context: dict[str, Any]) -> Any:
    """`value` with every templated string inside it evaluated against `context`."""
    if isinstance(value, dict):
        return {k: evaluate_values(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate_values(v, context) for v in value]
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value
    try:
        result = _compiled_value(value)(**context)
        if isinstance(result, jinja2.Undefined):
            result._fail_with_undefined_error()
        return result
    except jinja2.TemplateError as exc:
        raise TemplateFailure(f"{value!r}: {exc}") from None


def render_file(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateError as exc:
        template = getattr(exc, "name", None) or name
        where = f"{template}:{exc.lineno}" if getattr(exc, "lineno", None) else template
        raise TemplateFailure(f"{where}: {exc.message}") from None
