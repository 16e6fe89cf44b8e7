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


# Far beyond any real platform.yaml (a few KB), far below what would exhaust time or
# memory: aliases and merge keys let a few lines expand to billions of values ("billion
# laughs"), and the parser recurses once per nesting level. Every value and key, however
# reached, counts towards the limits, so the work is bounded by the file's size.
MAX_FILE_BYTES = 256 * 1024
MAX_VALUES = 100_000
MAX_EXPANDED_CHARS = 4 * MAX_FILE_BYTES
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SHOWN_CHARS = 40  # of the user's text quoted in a message

# libyaml for heliostat's own data files (catalog, schemas): several times faster. A
# user's file goes through the pure-Python parser, whose error messages are clearer.
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml_file(path: Path, display_name: str | None = None,
                   trusted: bool = False) -> YamlDocument:
    """Load `path`; `trusted` marks heliostat's own data, parsed with libyaml."""
    name = display_name or str(path)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)  # never more, whatever the file is
    except FileNotFoundError:
        raise InvalidInput.single(name, "no such file") from None
    except IsADirectoryError:
        raise InvalidInput.single(name, "is a directory, not a YAML file") from None
    except OSError as exc:
        raise InvalidInput.single(name, f"cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInput.single(name, _too_large())
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput.single(name, f"is not UTF-8 text ({exc.reason})") from None
    return load_yaml_text(text, name, _FAST_LOADER if trusted else yaml.SafeLoader)


def _too_large() -> str:
    return f"is larger than {MAX_FILE_BYTES // 1024} KiB: not a platform description"


def load_yaml_text(text: str, name: str, loader_class: type = yaml.SafeLoader) -> YamlDocument:
    if len(text) > MAX_FILE_BYTES:
        raise InvalidInput.single(name, _too_large())
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
        document.data = _Construction(loader, document, text).value_of(node, ())
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
    """Builds Python values from the node tree, recording lines, within the limits.

    Mappings, sequences and merge keys are walked here, not by PyYAML's constructor, so
    that whatever an alias or a merge key brings in is counted; only scalars are left to
    PyYAML. Keys must be scalars: a mapping or list as a key is refused unbuilt.
    """

    def __init__(self, loader: Any, doc: YamlDocument, text: str) -> None:
        self.loader = loader
        self.doc = doc
        self.text = text
        self.values = 0
        self.chars = 0
        self.merging: list[yaml.MappingNode] = []

    def _count(self, node: yaml.Node, path: KeyPath) -> None:
        self.values += 1
        if isinstance(node, yaml.ScalarNode):
            self.chars += len(node.value)
        if self.values > MAX_VALUES or self.chars > MAX_EXPANDED_CHARS:
            what = (f"more than {MAX_VALUES:,} values" if self.values > MAX_VALUES
                    else f"more than {MAX_EXPANDED_CHARS // 1024 ** 2} MiB of text")
            raise InvalidInput.single(
                self.doc.file, f"{what} (after expanding aliases and merge keys)",
                line=node.start_mark.line + 1, path=format_path(path))

    def value_of(self, node: yaml.Node, path: KeyPath) -> Any:
        doc = self.doc
        line = node.start_mark.line + 1
        self._count(node, path)
        if len(path) > MAX_DEPTH:
            raise InvalidInput.single(
                doc.file, f"nested more than {MAX_DEPTH} levels deep",
                line=line, path=format_path(path))
        doc.lines.setdefault(path, line)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.value_of(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:
            # e.g. a date 2024-13-01, or an integer of more than 4,300 digits.
            kind = node.tag.rpartition(":")[2]
            reason = ("too many digits" if "digits" in str(exc)
                      else str(exc)[:_SHOWN_CHARS * 2])
            raise InvalidInput.single(
                self.doc.file, f"not valid YAML: {self._shown(node)} is not a valid {kind} "
                f"({reason})", line=node.start_mark.line + 1, path=format_path(path)) from None

    def _shown(self, node: yaml.Node) -> str:
        """The node as the file spells it, shortened to one line of a message."""
        start, end = node.start_mark.index, node.end_mark.index
        snippet = " ".join(self.text[start:min(end, start + 4 * _SHOWN_CHARS)].split())
        if end - start > 4 * _SHOWN_CHARS or len(snippet) > _SHOWN_CHARS:
            snippet = snippet[:_SHOWN_CHARS - 3] + "..."
        return snippet

    def _key(self, key_node: yaml.Node, path: KeyPath) -> str:
        doc = self.doc
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
            raise InvalidInput.single(
                doc.file, f"keys must be strings, not {kind} {self._shown(key_node)}",
                line=line, path=format_path(path))
        self._count(key_node, path)
        key = self._scalar(key_node, path)
        if not isinstance(key, str):
            raise InvalidInput.single(
                doc.file, f"keys must be strings, not {_type_name(key)} {self._shown(key_node)}",
                line=line, path=format_path(path))
        return key

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        doc = self.doc
        own: dict[str, Any] = {}
        lines: dict[str, int] = {}
        sources: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources.append(value_node)
                continue
            key = self._key(key_node, path)
            line = key_node.start_mark.line + 1
            if key in lines:
                raise InvalidInput.single(
                    doc.file, f"duplicate key (first defined on line {lines[key]})",
                    line=line, path=format_path((*path, key)))
            lines[key] = line
            if self.merging:  # a merged key's line only where the file has no own key
                doc.lines.setdefault((*path, key), line)
            else:
                doc.lines[(*path, key)] = line
            own[key] = self.value_of(value_node, (*path, key))
        if not sources:
            return own
        # `<<`: the merged mappings' keys, the mapping's own winning, then the earlier
        # of the merged ones (as PyYAML and YAML 1.1's merge key define it).
        inherited: dict[str, Any] = {}
        for source in sources:
            for merged in self._merge_sources(source, path):
                for key, value in self._merged(merged, path).items():
                    inherited.setdefault(key, value)
        return {**inherited, **own}

    def _merge_sources(self, source: yaml.Node, path: KeyPath) -> list[yaml.MappingNode]:
        items = source.value if isinstance(source, yaml.SequenceNode) else [source]
        for item in items:
            if not isinstance(item, yaml.MappingNode):
                raise InvalidInput.single(
                    self.doc.file, "not valid YAML: `<<` merges a mapping or a list of "
                    f"mappings, not {self._shown(item)}",
                    line=item.start_mark.line + 1, path=format_path(path))
        return items

    def _merged(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        if any(node is active for active in self.merging):
            raise InvalidInput.single(
                self.doc.file, "not valid YAML: `<<` merges a mapping into itself",
                line=node.start_mark.line + 1, path=format_path(path))
        if len(self.merging) >= MAX_DEPTH:
            raise InvalidInput.single(
                self.doc.file, f"merge keys nested more than {MAX_DEPTH} levels deep",
                line=node.start_mark.line + 1, path=format_path(path))
        self.merging.append(node)
        try:
            self._count(node, path)
            return self._mapping(node, path)
        finally:
            self.merging.pop()


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", type(None): "null"}.get(
        type(value), type(value).__name__)
