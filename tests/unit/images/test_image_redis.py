"""The Redis image's password include file (bundles/core/images/redis/auth_conf.py)."""

import os
from pathlib import Path

from tests.unit.images.recipe_scripts import load_script, recipe_dir

RECIPE = recipe_dir("core", "redis")


auth = load_script("core", "redis", "auth_conf.py")


def test_passwords_are_quoted_so_redis_reads_them_back_exactly():
    assert auth.quoted("plain-Pass_123") == '"plain-Pass_123"'
    assert auth.quoted('a "b" \\c') == '"a \\x22b\\x22 \\x5cc"'
    assert auth.quoted("é\n") == '"\\xc3\\xa9\\x0a"'


def test_only_the_latest_include_file_is_kept_and_only_its_owner_reads_it(tmp_path):
    first = auth.write_include("one", str(tmp_path))
    second = auth.write_include("two", str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == [os.path.basename(second)]
    assert not os.path.exists(first)
    assert Path(second).read_text() == 'requirepass "two"\n'
    assert Path(second).stat().st_mode & 0o077 == 0


def test_main_prints_the_file_and_never_the_password(tmp_path, monkeypatch, capsys):
    (tmp_path / "redis-password").write_text("s3cret\n")
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "redis-password"))
    monkeypatch.setattr(auth, "runtime_dir", lambda: str(tmp_path))
    assert auth.main() == 0
    out = capsys.readouterr().out.strip()
    assert "s3cret" not in out
    assert Path(out).read_text() == 'requirepass "s3cret"\n'


def test_a_missing_password_file_stops_the_start(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "absent"))
    assert auth.main() == 1
    assert "No such file" in capsys.readouterr().err
