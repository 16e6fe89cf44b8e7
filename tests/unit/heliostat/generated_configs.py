"""Generated platform.yaml documents near what the schema allows: shared by the fuzz test of
the config loader and the Kubernetes API server's acceptance test of what they render."""

import copy
from typing import Any

from hypothesis import strategies as st

from heliostat.schema import _resolve, platform_schema

BASE = {
    "apiVersion": "heliostat/v1", "name": "acme", "profile": "compose",
    "modules": {"clickstream": {"enabled": True, "event_api": {"replicas": 2}},
                "airflow": {"enabled": True, "workers": {"replicas": 2}}},
    "stores": {"postgres": {"mode": "internal"}},
}


def schema_paths() -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    root = platform_schema()
    found = []

    def walk(schema: dict[str, Any], path: tuple[str, ...]) -> None:
        for key, sub in _resolve(schema, root).get("properties", {}).items():
            if isinstance(sub, dict):
                sub = _resolve(sub, root)
                found.append(((*path, key), sub))
                walk(sub, (*path, key))

    walk(root, ())
    return found


PATHS = schema_paths()
ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6)


def plausible_values(schema: dict[str, Any]) -> st.SearchStrategy:
    """Values near what the schema allows: its enum, default and the edges of its range."""
    options: list[Any] = list(schema.get("enum", []))
    for key in ("default", "const", "minimum", "maximum"):
        if key in schema:
            options.append(schema[key])
    for key in ("minimum", "maximum"):
        if key in schema:
            options += [schema[key] - 1, schema[key] + 1]
    if schema.get("type") == "boolean":
        options += [True, False, "yes"]
    if schema.get("type") == "string":
        options += ["", "x", "external", "10Gi", "ssh://u@h:22", "/abs"]
    return st.sampled_from(options) if options else ANY_VALUE


@st.composite
def mutated_documents(draw) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path, schema = draw(st.sampled_from(PATHS))
        parent = document
        for part in path[:-1]:
            if not isinstance(parent.get(part), dict):
                parent[part] = {}
            parent = parent[part]
        action = draw(st.sampled_from(["plausible", "plausible", "any", "delete", "unknown"]))
        if action == "delete":
            parent.pop(path[-1], None)
        elif action == "unknown":
            parent[draw(st.sampled_from(["extra", "replica", "enable", path[-1] + "s"]))] = 1
        else:
            values = plausible_values(schema) if action == "plausible" else ANY_VALUE
            parent[path[-1]] = draw(values)
    return document
