from pathlib import Path

import pytest

from heliostat.problems import InvalidInput
from heliostat.yaml_source import format_path, load_yaml_file, load_yaml_text


def problem_of(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        load_yaml_text(text, "p.yaml")
    (problem,) = caught.value.problems
    return str(problem)


def test_records_the_line_of_every_key_path():
    doc = load_yaml_text("a:\n  b:\n    - x\n    - {c: 1}\nd: 2\n", "p.yaml")
    assert doc.data == {"a": {"b": ["x", {"c": 1}]}, "d": 2}
    assert doc.lines[("a", "b")] == 2
    assert doc.lines[("a", "b", 1, "c")] == 4
    assert doc.line_of(("d",)) == 5
    assert doc.line_of(("a", "b", 0, "missing")) == 3  # nearest spelled-out ancestor


def test_duplicate_keys_are_refused_with_both_lines():
    assert problem_of("a: 1\nb:\n  c: 1\n  c: 2\n") == (
        "p.yaml:4: b.c: duplicate key (first defined on line 3)")


def test_merge_keys_are_resolved():
    doc = load_yaml_text("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "p.yaml")
    assert doc.data["other"] == {"x": 1, "y": 2}


@pytest.mark.parametrize(("text", "expected"), [
    ("", "p.yaml: is empty: expected a YAML mapping"),
    ("a: [1\n", "p.yaml:2: not valid YAML: expected ',' or ']', but got '<stream end>'"),
    ("? [1, 2]\n: x\n", "p.yaml:1: keys must be strings, not list [1, 2]"),
    ("1: x\n", "p.yaml:1: keys must be strings, not integer 1"),
    ("a: 1\nb: \x00\n", "p.yaml:2: not valid YAML: character U+0000 is not allowed"),
    ("a: 1\n---\nb: 2\n", "p.yaml:2: not valid YAML: expected a single document in the stream, "
                          "but found another document"),
])
def test_malformed_yaml_is_one_clear_problem(text, expected):
    assert problem_of(text) == expected


def test_unreadable_files(tmp_path: Path):
    with pytest.raises(InvalidInput, match="no such file"):
        load_yaml_file(tmp_path / "missing.yaml")
    with pytest.raises(InvalidInput, match="is a directory"):
        load_yaml_file(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidInput, match="is not UTF-8 text"):
        load_yaml_file(binary)


def test_key_paths_quote_keys_that_are_not_plain():
    assert format_path(("modules", "clickstream", "event_api")) == "modules.clickstream.event_api"
    assert format_path(("ports", 0, "name")) == "ports[0].name"
    assert format_path(("target", "my key", "a.b", "")) == "target['my key']['a.b']['']"


def test_alias_expansion_is_bounded():
    # Nine levels of ten aliases each would expand to a billion values.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    assert problem_of("\n".join(lines) + "\n").endswith(
        "more than 100,000 values (after expanding aliases)")


def test_aliases_within_the_bound_are_expanded():
    doc = load_yaml_text("a: &a {x: 1}\nb: [*a, *a]\n", "p.yaml")
    assert doc.data["b"] == [{"x": 1}, {"x": 1}]


@pytest.mark.parametrize("depth", [65, 5000])
def test_deep_nesting_is_refused_not_a_crash(depth):
    problem = problem_of("a: " + "[" * depth + "]" * depth + "\n")
    assert problem.startswith("p.yaml:")
    assert "nested more than 64 levels deep" in problem


def test_nesting_up_to_the_limit_is_accepted():
    doc = load_yaml_text("a: " + "[" * 63 + "1" + "]" * 63 + "\n", "p.yaml")
    value = doc.data["a"]
    for _ in range(62):
        (value,) = value
    assert value == [1]
