"""Private key files: plain, passphrase-protected (from a file or asked), missing."""

from pathlib import Path

import paramiko
import pytest

from heliostat.transports.connection import AuthRefused, Credentials, load_key


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("keys")
    key = paramiko.RSAKey.generate(1024)
    plain, locked = directory / "plain", directory / "locked"
    key.write_private_key_file(str(plain))
    key.write_private_key_file(str(locked), password="s3cret phrase")
    return {"plain": plain, "locked": locked}


def test_a_plain_key_loads(keys):
    assert load_key(keys["plain"], Credentials(), required=True) is not None


def test_a_passphrase_file_decrypts_and_its_final_newline_is_not_part_of_it(keys, tmp_path):
    phrase = tmp_path / "phrase"
    phrase.write_text("s3cret phrase\n")
    assert load_key(keys["locked"], Credentials(passphrase_file=phrase), required=True)


def test_an_asked_passphrase_decrypts(keys):
    asked: list[Path] = []

    def ask(path: Path) -> str:
        asked.append(path)
        return "s3cret phrase"

    assert load_key(keys["locked"], Credentials(ask_passphrase=ask), required=True)
    assert asked == [keys["locked"]]


def test_a_wrong_passphrase_is_named_but_not_shown(keys, tmp_path):
    phrase = tmp_path / "phrase"
    phrase.write_text("not it")
    with pytest.raises(AuthRefused, match="wrong passphrase") as refused:
        load_key(keys["locked"], Credentials(passphrase_file=phrase), required=True)
    assert "not it" not in str(refused.value)


def test_without_a_terminal_a_locked_key_says_what_to_do(keys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(AuthRefused, match="key_passphrase_file"):
        load_key(keys["locked"], Credentials(), required=True)


def test_a_missing_key_is_an_error_only_when_it_was_named(tmp_path):
    assert load_key(tmp_path / "none", Credentials(), required=False) is None
    with pytest.raises(AuthRefused, match="does not exist"):
        load_key(tmp_path / "none", Credentials(), required=True)
