"""Host keys: known, accepted by fingerprint, or refused with the fingerprint to accept."""

import shutil
import subprocess
from pathlib import Path

import paramiko
import pytest

from heliostat.transports.host_keys import HostKeyRefused, KnownKeys, check_host_key, fingerprint


@pytest.fixture(scope="module")
def keys() -> tuple[paramiko.PKey, paramiko.PKey]:
    return paramiko.RSAKey.generate(1024), paramiko.RSAKey.generate(1024)


def known_hosts(tmp_path: Path, name: str, key: paramiko.PKey) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(f"{name} {key.get_name()} {key.get_base64()}\n")
    return path


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")
def test_fingerprints_are_the_ones_ssh_keygen_prints(tmp_path, keys):
    path = tmp_path / "key.pub"
    path.write_text(f"{keys[0].get_name()} {keys[0].get_base64()}\n")
    printed = subprocess.run(["ssh-keygen", "-lf", str(path)], capture_output=True, text=True,
                             check=True).stdout.split()[1]
    assert fingerprint(keys[0]) == printed


def test_a_known_key_passes(tmp_path, keys):
    files = [known_hosts(tmp_path, "[10.0.0.1]:2222", keys[0])]
    known = KnownKeys.read(files, "10.0.0.1", 2222)
    assert check_host_key(keys[0], known, (), "10.0.0.1:2222", files) == "known_hosts"


def test_the_port_is_part_of_the_name(tmp_path, keys):
    files = [known_hosts(tmp_path, "10.0.0.1", keys[0])]
    with pytest.raises(HostKeyRefused, match="unknown"):
        check_host_key(keys[0], KnownKeys.read(files, "10.0.0.1", 2222), (), "x", files)


def test_hashed_entries_are_understood(tmp_path, keys):
    hashed = paramiko.HostKeys.hash_host("[10.0.0.1]:2222")
    files = [known_hosts(tmp_path, hashed, keys[0])]
    known = KnownKeys.read(files, "10.0.0.1", 2222)
    assert check_host_key(keys[0], known, (), "x", files) == "known_hosts"


def test_an_unknown_key_is_refused_with_its_fingerprint_and_the_option(tmp_path, keys):
    files = [tmp_path / "missing"]
    with pytest.raises(HostKeyRefused) as refused:
        check_host_key(keys[0], KnownKeys.read(files, "h", 22), (), "h:22", files)
    assert refused.value.fingerprint == fingerprint(keys[0])
    assert f"--accept-host-key {fingerprint(keys[0])}" in str(refused.value)
    assert "unknown" in str(refused.value)


def test_a_changed_key_is_refused_as_changed(tmp_path, keys):
    files = [known_hosts(tmp_path, "h", keys[0])]
    with pytest.raises(HostKeyRefused, match="CHANGED") as refused:
        check_host_key(keys[1], KnownKeys.read(files, "h", 22), (), "h:22", files)
    assert fingerprint(keys[1]) in str(refused.value)


def test_a_given_fingerprint_accepts_exactly_that_key(tmp_path, keys):
    files = [known_hosts(tmp_path, "h", keys[0])]
    known = KnownKeys.read(files, "h", 22)
    assert check_host_key(keys[1], known, [fingerprint(keys[1])], "h", files) == "fingerprint"
    with pytest.raises(HostKeyRefused):
        check_host_key(keys[1], known, [fingerprint(keys[0])], "h", files)
