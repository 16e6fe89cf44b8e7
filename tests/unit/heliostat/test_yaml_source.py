from pathlib import Path

import pytest

from heliostat.problems import MAX_MESSAGE_CHARS, MAX_PROBLEMS, InvalidInput, Problem
from heliostat.yaml_source import MAX_FILE_BYTES, format_path, load_yaml_file, load_yaml_text


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
        "more than 100,000 values (after expanding aliases and merge keys)")


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


def _anchored_levels(levels: int, fan_out: int = 10) -> list[str]:
    """Flow items that each hold `fan_out` aliases of the one before: the last stands for
    `fan_out ** levels` scalars."""
    items = ["&a0 [" + ", ".join(["x"] * fan_out) + "]"]
    items += [f"&a{n} [" + ", ".join([f"*a{n - 1}"] * fan_out) + "]" for n in range(1, levels)]
    return items


def _merging_levels(levels: int, fan_out: int = 10) -> list[str]:
    items = ["&m0 {a: 1, b: 2}"]
    items += [f"&m{n} {{<<: *m{n - 1}, k{n}: [" + ", ".join([f"*m{n - 1}"] * fan_out) + "]}"
              for n in range(1, levels)]
    return items


@pytest.mark.parametrize("items", [_anchored_levels(7), _merging_levels(6)],
                         ids=["aliases", "merge keys"])
def test_a_mapping_or_list_as_a_key_is_refused_unbuilt(items):
    # A few hundred bytes; built and printed, this key was a message of tens of MB (and
    # one more level makes it ten times that).
    text = "? [" + ", ".join(items) + "]\n: 1\n"
    assert len(text) < 1000
    problem = problem_of(text)
    assert problem.startswith("p.yaml:1: keys must be strings, not list [&")
    assert len(problem) < 200


def test_merge_keys_are_counted_towards_the_limit():
    lines = [f"m{n}: {item}" for n, item in enumerate(_merging_levels(9))]
    assert problem_of("\n".join(lines) + "\n").endswith(
        "more than 100,000 values (after expanding aliases and merge keys)")


def test_the_text_aliases_expand_to_is_bounded():
    # Few values, but each a long string: 64 copies of 64 KiB would be 4 MiB.
    lines = ["s: &s " + "y" * 65536, "l1: &l1 [*s, *s, *s, *s, *s, *s, *s, *s]",
             "l2: [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]"]
    assert problem_of("\n".join(lines) + "\n").endswith(
        "more than 1 MiB of text (after expanding aliases and merge keys)")


def test_merge_keys_follow_yaml_the_mappings_own_keys_win_then_the_first_merged():
    doc = load_yaml_text("a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\n"
                         "c:\n  <<: [*a, *b]\n  y: 3\n", "p.yaml")
    assert doc.data["c"] == {"x": 1, "y": 3, "z": 2}
    assert doc.lines[("c", "y")] == 5 and doc.lines[("c", "z")] == 2


@pytest.mark.parametrize(("text", "expected"), [
    ("a: &a\n  <<: *a\n", "p.yaml:1: a: not valid YAML: `<<` merges a mapping into itself"),
    ("a: {<<: 3}\n", "p.yaml:1: a: not valid YAML: `<<` merges a mapping or a list of "
                     "mappings, not 3"),
    ("a: 2024-13-01\n", "p.yaml:1: a: not valid YAML: 2024-13-01 is not a valid timestamp "
                        "(month must be in 1..12)"),
    ("a: " + "9" * 5000 + "\n", "p.yaml:1: a: not valid YAML: "
                                 "9999999999999999999999999999999999999... is not a valid int "
                                 "(too many digits)"),
    ("? " + "9" * 5000 + "\n: 1\n", "p.yaml:1: not valid YAML: "
                                     "9999999999999999999999999999999999999... is not a valid "
                                     "int (too many digits)"),
    ("? !!binary aGVsbG8=\n: 1\n", "p.yaml:1: keys must be strings, not bytes "
                                    "!!binary aGVsbG8="),
])
def test_odd_values_are_one_clear_problem(text, expected):
    assert problem_of(text) == expected


def test_files_and_texts_over_the_size_limit_are_refused_unread(tmp_path: Path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * MAX_FILE_BYTES + "\n")
    with pytest.raises(InvalidInput, match="is larger than 256 KiB"):
        load_yaml_file(big)
    with pytest.raises(InvalidInput, match="is larger than 256 KiB"):
        load_yaml_file(Path("/dev/zero"))  # endless: only the limit's worth is read
    assert problem_of("a: " + "x" * MAX_FILE_BYTES) == (
        "p.yaml: is larger than 256 KiB: not a platform description")


def test_problems_are_capped_in_size_and_number():
    problem = Problem("p.yaml", 1, "k" * 10_000, "m" * 10_000)
    assert len(problem.message) == MAX_MESSAGE_CHARS and problem.message.endswith("...")
    assert len(str(problem)) < 1300
    many = InvalidInput([Problem("p.yaml", n, "a", "bad") for n in range(1, 5001)])
    assert len(many.problems) == MAX_PROBLEMS + 1
    assert str(many.problems[-1]) == "p.yaml: ... and 4,900 more problems"
