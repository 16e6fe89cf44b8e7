"""Password hashes: scrypt (hashlib) with a per-user salt, its parameters stored with it.

A stored hash reads `scrypt$ln=15,r=8,p=3$<salt>$<key>` (salt and key in unpadded
base64), so the cost can be raised later: a hash made with other parameters still
verifies, and `needs_rehash` says to store a new one at the next successful login.
The default is one of OWASP's scrypt settings (N=2^15, r=8, p=3: 32 MiB, ~0.1 s).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import threading
from dataclasses import dataclass

_FORMAT = re.compile(r"scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})"
                     r"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)")
SALT_BYTES = 16
KEY_BYTES = 32
# Every concurrent derivation holds 128 * r * N bytes: a few at once per process keep a
# burst of logins within the container's memory.
_CONCURRENT = threading.BoundedSemaphore(2)


@dataclass(frozen=True)
class ScryptCost:
    log2_n: int = 15
    r: int = 8
    p: int = 3

    @property
    def memory(self) -> int:
        return 128 * self.r * (2 ** self.log2_n)


DEFAULT_COST = ScryptCost()


def hash_password(password: str, cost: ScryptCost = DEFAULT_COST) -> str:
    salt = os.urandom(SALT_BYTES)
    key = _derive(password, salt, cost)
    return f"scrypt$ln={cost.log2_n},r={cost.r},p={cost.p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches `stored`; False for a hash this module cannot read."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    cost, salt, key = parsed
    return hmac.compare_digest(_derive(password, salt, cost, len(key)), key)


def needs_rehash(stored: str, cost: ScryptCost = DEFAULT_COST) -> bool:
    parsed = _parse(stored)
    return parsed is None or parsed[0] != cost


def burn_time(cost: ScryptCost = DEFAULT_COST) -> None:
    """As long as a verification takes: an unknown user costs what a known one does."""
    _derive("", b"\0" * SALT_BYTES, cost)


def _derive(password: str, salt: bytes, cost: ScryptCost, length: int = KEY_BYTES) -> bytes:
    with _CONCURRENT:
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=2 ** cost.log2_n,
                              r=cost.r, p=cost.p, maxmem=2 * cost.memory + 2 ** 20,
                              dklen=length)


def _parse(stored: str) -> tuple[ScryptCost, bytes, bytes] | None:
    match = _FORMAT.fullmatch(stored or "")
    if match is None:
        return None
    cost = ScryptCost(int(match[1]), int(match[2]), int(match[3]))
    if not (1 <= cost.log2_n <= 20 and cost.r >= 1 and cost.p >= 1):
        return None
    try:
        salt, key = _unb64(match[4]), _unb64(match[5])
    except (binascii.Error, ValueError):
        return None
    return (cost, salt, key) if salt and 16 <= len(key) <= 64 else None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
