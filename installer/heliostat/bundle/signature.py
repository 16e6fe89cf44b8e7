"""ed25519 signatures over a bundle's manifest (which holds every member's sha256, so
signing it signs the whole bundle). Keys in PEM (`openssl genpkey -algorithm ed25519`)
or OpenSSH format (`ssh-keygen -t ed25519`)."""

from __future__ import annotations

import base64
from pathlib import Path

from heliostat.bundle.layout import BundleError


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise BundleError(f"cannot read the {what} {path}: {error.strerror}") from None


def sign(manifest: bytes, private_key: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read(private_key, "signing key")
    try:
        if data.lstrip().startswith(b"-----BEGIN OPENSSH PRIVATE KEY"):
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise BundleError(f"{private_key} is not an unencrypted private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{private_key} is not an ed25519 key")
    return base64.b64encode(key.sign(manifest)) + b"\n"


def check(manifest: bytes, signature: bytes, public_key: Path) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read(public_key, "public key")
    try:
        if data.lstrip().startswith(b"ssh-ed25519"):
            key = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise BundleError(f"{public_key} is not a public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{public_key} is not an ed25519 key")
    try:
        key.verify(base64.b64decode(signature.strip(), validate=True), manifest)
    except (InvalidSignature, ValueError):
        raise BundleError(f"the bundle's signature does not match the key {public_key}: "
                          "it was not signed by that key, or its manifest was changed"
                          ) from None
