"""Host-key checking: a host's key must be in known_hosts, or its SHA256 fingerprint given
explicitly (`--accept-host-key`, `target.compose.ssh.host_key_fingerprint`). Nothing is
trusted on first use, and nothing is written to known_hosts."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from heliostat.transports import TransportError
from heliostat.transports.address import known_hosts_name


class HostKeyRefused(TransportError):
    """The host's key is unknown or differs from the one known_hosts holds."""

    def __init__(self, message: str, fingerprint: str) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


def fingerprint(key: paramiko.PKey) -> str:
    """As `ssh-keygen -l` prints it: SHA256 of the key's wire form, base64 without padding."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class KnownKeys:
    """The keys known_hosts files hold for one host name, by key type."""

    by_type: dict[str, list[paramiko.PKey]]

    @classmethod
    def read(cls, files: Iterable[Path], host: str, port: int) -> KnownKeys:
        name = known_hosts_name(host, port)
        by_type: dict[str, list[paramiko.PKey]] = {}
        for file in files:
            path = file.expanduser()
            if not path.is_file():
                continue
            keys = paramiko.HostKeys()
            try:
                keys.load(str(path))
            except (OSError, paramiko.SSHException, ValueError) as exc:
                raise TransportError(f"cannot read known_hosts file {path}: {exc}") from None
            for key_type, key in (keys.lookup(name) or {}).items():
                by_type.setdefault(key_type, []).append(key)
        return cls(by_type)


def check_host_key(key: paramiko.PKey, known: KnownKeys, accepted: Iterable[str], where: str,
                   files: Iterable[Path]) -> str:
    """Returns how the key was trusted ("known_hosts" or "fingerprint"); raises
    HostKeyRefused when it is neither known nor accepted."""
    print_ = fingerprint(key)
    same_type = known.by_type.get(key.get_name(), [])
    if any(k.asbytes() == key.asbytes() for k in same_type):
        return "known_hosts"
    if print_ in set(accepted):
        return "fingerprint"
    looked_in = ", ".join(str(f) for f in files) or "no known_hosts file"
    accept = f"--accept-host-key {print_}"
    if same_type:
        raise HostKeyRefused(
            f"the host key of {where} has CHANGED ({key.get_name()} {print_}; {looked_in} holds "
            "another one): someone may be intercepting the connection. If the host was "
            f"reinstalled, check the new fingerprint with its owner, then pass {accept} or "
            "replace its line in known_hosts", print_)
    raise HostKeyRefused(
        f"the host key of {where} is unknown ({key.get_name()} {print_}, not in {looked_in}): "
        f"check the fingerprint with the host's owner (ssh-keygen -lf "
        f"/etc/ssh/ssh_host_{key.get_name().removeprefix('ssh-').split('-')[0]}_key.pub on "
        f"the host), then pass {accept} or add the key to known_hosts", print_)
