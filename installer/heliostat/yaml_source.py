"""Load YAML while remembering where every value came from.

PyYAML silently keeps the last of two equal keys and forgets line numbers once it has
built Python objects; a config tool needs both, so we walk the composed node tree
ourselves and record the line of every key path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heliostat.problems import InvalidInput

KeyPath = tuple[str | int, ...]


@dataclass
class YamlDocument:
    data: Any
    file: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that the file spells out."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_path(path: KeyPath) -> str:
    """`modules.clickstream.event_api`, `ports[0]`; odd keys quoted: `target['my key']`."""
    text = ""
    for part in path:
        if isinstance(part, int) or not _PLAIN_KEY.fullmatch(part):
            text += f"[{part!r}]"
        else:
            text += f".{part}" if text else part
    return text


# Far beyond any real platform.yaml, far below what would exhaust time or memory:
# aliases let a few lines expand to billions of values ("billion laughs"), and the
# parser recurses once per nesting level.
MAX_VALUES = 100_000
MAX_DEPTH = 64

# libyaml for heliostat's own data files (catalog, schemas): several times faster. A
# user's file goes through the pure-Python parser, whose error messages are clearer.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_file(path: Path, display_name: str | None = None,
                   trusted: bool = False) -> YamlDocument:
    """Load `path`; `trusted` marks heliostat's own data, parsed with libyaml."""
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput.single(name, "no such file") from None
    except IsADirectoryError:
        raise InvalidInput.single(name, "is a directory, not a YAML file") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput.single(name, f"is not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InvalidInput.single(name, f"cannot be read: {exc.strerror}") from None
    return load_yaml_text(text, name, _FAST_LOADER if trusted else yaml.SafeLoader)


def load_yaml_text(text: str, name: str, loader_class: type = yaml.SafeLoader) -> YamlDocument:
    try:
        loader = loader_class(text)
    except yaml.reader.ReaderError as exc:  # checked before parsing starts
        line = text[: exc.position].count("\n") + 1
        raise InvalidInput.single(
            name, f"not valid YAML: character U+{exc.character:04X} is not allowed", line=line
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise InvalidInput.single(name, "is empty: expected a YAML mapping")
        document = YamlDocument(data=None, file=name)
        document.data = _Construction(loader, document).value_of(node, ())
        return document
    except RecursionError:
        raise InvalidInput.single(
            name, f"not valid YAML: nested more than {MAX_DEPTH} levels deep") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and problem.startswith("but "):  # "expected X" + "but found Y"
            problem = f"{exc.context}, {problem}"
        raise InvalidInput.single(name, f"not valid YAML: {problem}", line=line) from None
    except yaml.YAMLError as exc:
        raise InvalidInput.single(name, f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()


class _Construction:
    """Builds Python values from the node tree, recording lines, within the limits."""

    def __init__(self, loader: Any, doc: YamlDocument) -> None:
        self.loader = loader
        self.doc = doc
        self.values = 0

    def value_of(self, node: yaml.Node, path: KeyPath) -> Any:
        doc = self.doc
        line = node.start_mark.line + 1
        self.values += 1
        if self.values > MAX_VALUES:
            raise InvalidInput.single(
                doc.file, f"more than {MAX_VALUES:,} values (after expanding aliases)",
                line=line, path=format_path(path))
        if len(path) > MAX_DEPTH:
            raise InvalidInput.single(
                doc.file, f"nested more than {MAX_DEPTH} levels deep",
                line=line, path=format_path(path))
        doc.lines.setdefault(path, line)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.value_of(item, (*path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        doc = self.doc
        self.loader.flatten_mapping(node)  # resolves `<<` merge keys
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise InvalidInput.single(
                    doc.file, f"keys must be strings, not {_type_name(key)} {key!r}",
                    line=line, path=format_path(path))
            if key in result:
                first = doc.lines[(*path, key)]
                raise InvalidInput.single(
                    doc.file, f"duplicate key (first defined on line {first})",
                    line=line, path=format_path((*path, key)))
            doc.lines[(*path, key)] = line
            result[key] = self.value_of(value_node, (*path, key))
        return result


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", type(None): "null"}.get(
        type(value), type(value).__name__)
