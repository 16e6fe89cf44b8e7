"""The shared entrypoint (bundles/core/images/base): files from HELIOSTAT_FILES, hooks in
order, then the command itself."""

import json
import os
import shutil
import subprocess

import pytest

from tests.unit.images.recipe_scripts import load_script, recipe_dir

BASE = recipe_dir("core", "base")


write_files = load_script("core", "base", "write_files.py")


@pytest.fixture
def lib(tmp_path):
    lib = tmp_path / "lib"
    (lib / "entrypoint.d").mkdir(parents=True)
    shutil.copy(BASE / "write_files.py", lib)
    return lib


def run(lib, *command, env=None):
    return subprocess.run(["sh", str(BASE / "entrypoint"), *command], capture_output=True,
                          text=True, env={**os.environ, "HELIOSTAT_LIB": str(lib), **(env or {})})


def test_runs_the_command_with_its_arguments(lib):
    result = run(lib, "printf", "%s|", "a b", "c")
    assert (result.returncode, result.stdout) == (0, "a b|c|")


def test_without_a_command_it_fails_clearly(lib):
    result = run(lib)
    assert result.returncode == 64
    assert "no command" in result.stderr


def test_hooks_run_in_order_and_may_change_the_environment_and_command(lib):
    (lib / "entrypoint.d" / "20-second.sh").write_text('set -- "$@" "$GREETING"\n')
    (lib / "entrypoint.d" / "10-first.sh").write_text("export GREETING=hello\n")
    result = run(lib, "echo", "says")
    assert result.stdout == "says hello\n"


def test_a_failing_hook_stops_the_start(lib):
    (lib / "entrypoint.d" / "50-fails.sh").write_text("false\n")
    result = run(lib, "echo", "started")
    assert result.returncode != 0
    assert "started" not in result.stdout


@pytest.mark.parametrize(("command", "starts"), [
    (["postgres"], True),
    (["/usr/bin/postgres", "-c", "x=1"], True),
    (["postgres", "--version"], False),
    (["postgres", "-V"], False),
    (["psql"], False),
])
def test_heliostat_starts_tells_a_service_start_from_a_one_off_command(lib, command, starts):
    (lib / "entrypoint.d" / "50-check.sh").write_text(
        'if heliostat_starts postgres "$@"; then echo starts; else echo one-off; fi\n'
        'set -- true\n')
    result = run(lib, *command)
    assert result.stdout == ("starts\n" if starts else "one-off\n")


def test_files_are_written_before_the_hooks_and_the_variable_is_dropped(lib, tmp_path):
    target = tmp_path / "etc" / "service" / "service.conf"
    (lib / "entrypoint.d" / "50-read.sh").write_text(f'cat "{target}"\n')
    files = json.dumps({str(target): "key = value\n"})
    result = run(lib, "sh", "-c", 'echo "files=${HELIOSTAT_FILES:-unset}"',
                 env={"HELIOSTAT_FILES": files})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "key = value\nfiles=unset\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"


def test_a_file_that_cannot_be_written_is_named_without_its_content(lib, tmp_path):
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_text("")
    target = not_a_directory / "app.conf"
    result = run(lib, "true", env={"HELIOSTAT_FILES": json.dumps({str(target): "pw = hunter2"})})
    assert result.returncode == 1
    assert f"cannot write {target}" in result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(("text", "error"), [
    ("not json", "not JSON"),
    ("[]", "JSON object"),
    ('{"relative/path": "x"}', "absolute"),
    ('{"/etc/x": 1}', "not a string"),
])
def test_bad_heliostat_files_are_refused(text, error):
    with pytest.raises(ValueError, match=error):
        write_files.parse(text)


def test_write_replaces_an_existing_file(tmp_path):
    path = tmp_path / "a.conf"
    path.write_text("old")
    write_files.write(str(path), "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.conf"]
