"""Secrets on the Docker host: generated once, kept 0600 in a 0700 directory, and the
per-user copies containers mount."""

import os
import stat
import string

import pytest

from heliostat import secret_values
from heliostat.drivers.compose_files import secret_for_user, write_config
from heliostat.drivers.compose_secrets import ensure_secrets, read_secret
from heliostat.secret_values import SecretSourceError


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_generated_values_have_the_shape_their_kind_needs():
    password = secret_values.generate("password")
    assert len(password) == 32 and set(password) <= set(string.ascii_letters + string.digits)
    assert len(secret_values.generate("token")) >= 43
    import base64
    assert len(base64.urlsafe_b64decode(secret_values.generate("fernet"))) == 32
    assert secret_values.generate("token") != secret_values.generate("token")
    with pytest.raises(ValueError, match="unknown kind"):
        secret_values.generate("pin")


def test_secrets_are_generated_once_and_kept(tmp_path):
    declared = {"db": {"generate": "password"}, "api": {"generate": "token"}}
    first = ensure_secrets(declared, tmp_path)
    assert mode(tmp_path / "secrets") == 0o700
    assert mode(tmp_path / "secrets" / "db") == 0o600
    assert ensure_secrets(declared, tmp_path) == first
    assert read_secret(tmp_path, "db") == first["db"]
    assert read_secret(tmp_path, "nope") is None


def test_a_secret_from_a_file_is_copied_in_and_follows_the_file(tmp_path):
    source = tmp_path / "pg-password"
    source.write_text("s3cret\n")
    declared = {"postgres-external": {"from_file": str(source)}}
    assert ensure_secrets(declared, tmp_path / "state") == {"postgres-external": "s3cret"}
    source.write_text("rotated")
    assert ensure_secrets(declared, tmp_path / "state") == {"postgres-external": "rotated"}
    with pytest.raises(SecretSourceError, match=r"cannot read .*missing"):
        ensure_secrets({"x": {"from_file": str(tmp_path / "missing")}}, tmp_path / "state")


def test_a_container_user_gets_its_own_copy_owned_by_it(tmp_path):
    master = tmp_path / "secrets" / "db"
    master.parent.mkdir()
    master.write_text("v1")
    os.chmod(master, 0o600)
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")  # the test bed runs as root
    copy = secret_for_user(master, 33, 33)
    assert copy == tmp_path / "secrets" / "uid-33" / "db"
    assert copy.read_text() == "v1" and mode(copy) == 0o600 and os.stat(copy).st_uid == 33
    master.write_text("v2")
    assert secret_for_user(master, 33, 33).read_text() == "v2"
    assert secret_for_user(master, 0, 0) == master


def test_a_config_file_is_named_by_its_content(tmp_path):
    config = {"source": "nginx", "digest": "ab" * 32, "content": "x $y\n"}
    path = write_config(tmp_path, config)
    assert path.name == "nginx-" + "ab" * 8 and path.read_text() == "x $y\n"
    assert mode(path) == 0o644


def test_of_two_first_installs_racing_one_value_wins(tmp_path):
    from heliostat.drivers.compose_files import create_file

    path = tmp_path / "token"
    assert create_file(path, b"first", 0o600)
    assert not create_file(path, b"second", 0o600)
    assert path.read_bytes() == b"first" and mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["token"]  # no temporary left
