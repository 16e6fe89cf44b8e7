"""Values of generated secrets: made once, at first install, from the catalog's `secrets:`.

`generate:` says what a secret is for, and so what its value must look like: a `token`
signs or authenticates (URL-safe, 256 bits), a `password` goes into connection strings
and config files (letters and digits only, so nothing needs quoting anywhere), a
`fernet` key is what Airflow's Fernet encryption takes (32 bytes, URL-safe base64).
"""

from __future__ import annotations

import base64
import secrets
import string
from pathlib import Path

KINDS = ("token", "password", "fernet")
_PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32  # 190 bits from 62 symbols


def generate(kind: str) -> str:
    if kind == "token":
        return secrets.token_urlsafe(32)
    if kind == "password":
        return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
    if kind == "fernet":
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")
    raise ValueError(f"unknown kind of generated secret: {kind!r} (expected one of {KINDS})")


class SecretSourceError(Exception):
    """A secret to be read from a file on this host cannot be read; the user can fix it."""


def read_source(name: str, path: Path) -> str:
    """A secret platform.yaml says to read from a file on the installing host."""
    try:
        # One trailing newline is how editors end a file, not part of a password.
        return path.read_text(encoding="utf-8").removesuffix("\n")
    except OSError as exc:
        raise SecretSourceError(f"secret {name}: cannot read {path} ({exc.strerror or exc}); "
                                "platform.yaml names it as the file holding the password") \
            from None
    except UnicodeDecodeError:
        raise SecretSourceError(f"secret {name}: {path} is not UTF-8 text") from None
