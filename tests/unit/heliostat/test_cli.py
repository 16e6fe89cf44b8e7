import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from heliostat.cli import cli

ROOT = Path(__file__).resolve().parents[3]


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin)


def test_validate_an_example():
    result = run("validate", "-f", str(ROOT / "examples" / "compose.yaml"), "--output", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["profile"] == "compose" and "airflow" in summary["modules"]


def test_invalid_config_exits_2_with_file_line_and_key(tmp_path: Path):
    config = tmp_path / "platform.yaml"
    config.write_text("apiVersion: heliostat/v1\nname: acme\nmodules:\n  clickstream:\n"
                      "    enabled: true\n    event_api: {replicas: -1}\n")
    result = run("validate", "-f", str(config))
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"{config}:6: modules.clickstream.event_api.replicas: -1 is less than the minimum of 1")


def validate_stdin(data: bytes) -> tuple[int, str]:
    """`heliostat validate -f -` as a real process: what a user sees, stderr included."""
    process = subprocess.run([sys.executable, "-m", "heliostat", "validate", "-f", "-"],
                             input=data, capture_output=True, cwd=ROOT,
                             env={"PYTHONPATH": str(ROOT / "installer")})
    return process.returncode, process.stderr.decode()


def test_bad_input_never_shows_a_traceback():
    for data in [b"a: [", b"- x", b"apiVersion: heliostat/v1\nname: a\nprofile: 3\n", b"\x00",
                 b"a: !!python/object:os.system x\n"]:
        code, stderr = validate_stdin(data)
        assert code == 2, stderr
        assert "Traceback" not in stderr and stderr.startswith("<stdin>:"), stderr


def test_standard_input_that_is_not_utf8():
    assert validate_stdin(b"a: \xff\n") == (
        2, "<stdin>: is not UTF-8 text (invalid start byte)\n")


def test_standard_input_is_read_no_further_than_the_size_limit():
    # Multi-byte characters across the limit: the size is what is wrong, not the text.
    assert validate_stdin("é".encode() * 200_000) == (
        2, "<stdin>: is larger than 256 KiB: not a platform description\n")


def test_render_for_another_profile(tmp_path: Path):
    result = run("render", "-f", str(ROOT / "examples" / "compose.yaml"), "--profile",
                 "kubernetes", "-o", str(tmp_path), "--output", "json")
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)["files"]
    assert str(tmp_path / "statefulset-kafka.yaml") in files


def test_render_needs_an_output_directory():
    result = run("render")
    assert result.exit_code == 2 and "Missing option '-o'" in result.output


def test_render_into_an_unwritable_place(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run("render", "-o", str(blocker / "sub"))
    assert result.exit_code == 1 and "cannot write to" in result.output


def test_help_lists_only_what_works():
    result = run("--help")
    commands = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines()
                if line.strip()]
    assert commands == ["bundle", "diff", "doctor", "history", "install", "render", "rollback",
                        "schema", "status", "uninstall", "upgrade", "validate", "version"]


def test_the_cli_offers_exactly_the_profiles_the_schema_knows():
    from heliostat.cli import PROFILES
    from heliostat.schema import platform_schema

    assert list(PROFILES) == platform_schema()["properties"]["profile"]["enum"]


def test_schema_is_json_schema_2020_12():
    schema = json.loads(run("schema").output)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "airflow" in schema["properties"]["modules"]["properties"]


def test_checked_in_reference_is_current():
    """docs/platform-yaml.md is generated; `make docs` refreshes it."""
    generated = run("schema", "--markdown").output
    assert (ROOT / "docs" / "platform-yaml.md").read_text() == generated, (
        "docs/platform-yaml.md is stale: run `make docs`")
