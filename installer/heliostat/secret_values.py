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
