"""Resolving an SSH address as OpenSSH would: the Host entries of ~/.ssh/config (HostName,
Port, User, IdentityFile, IdentitiesOnly, ProxyJump, UserKnownHostsFile), then defaults."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

import paramiko

from heliostat.transports import TransportError
from heliostat.transports.address import SshAddress, parse_jumps

DEFAULT_CONFIG = Path("~/.ssh/config")
# OpenSSH's own defaults, in its order.
DEFAULT_KEY_FILES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")


@dataclass(frozen=True)
class ResolvedHost:
    """One SSH hop, with everything ~/.ssh/config adds to its address."""

    alias: str  # as written: a Host entry's name or a host name
    hostname: str
    port: int
    user: str
    identity_files: tuple[Path, ...]  # from IdentityFile entries only
    identities_only: bool
    proxy_jump: tuple[SshAddress, ...]
    known_hosts_files: tuple[Path, ...]  # from UserKnownHostsFile; empty: the default ones

    def __str__(self) -> str:
        return f"{self.user}@{self.hostname}:{self.port}"


def load_ssh_config(path: Path = DEFAULT_CONFIG) -> paramiko.SSHConfig:
    """The user's ssh_config, or an empty one when there is none."""
    path = path.expanduser()
    if not path.is_file():
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except (OSError, paramiko.ConfigParseError, ValueError) as exc:
        raise TransportError(f"cannot read {path}: {exc}; fix it or move it aside") from None


def resolve(address: SshAddress, config: paramiko.SSHConfig) -> ResolvedHost:
    """What the platform.yaml or the command line says wins over ~/.ssh/config."""
    entry = config.lookup(address.host)
    try:
        port = address.port or int(entry.get("port", 22))
    except ValueError:
        raise TransportError(f"~/.ssh/config: Port {entry['port']!r} of Host {address.host} "
                             "is not a number") from None
    return ResolvedHost(
        alias=address.host,
        hostname=entry.get("hostname", address.host),
        port=port,
        user=address.user or entry.get("user") or getpass.getuser(),
        identity_files=tuple(Path(f).expanduser() for f in entry.get("identityfile", [])),
        identities_only=entry.get("identitiesonly", "no").lower() == "yes",
        proxy_jump=parse_jumps(entry.get("proxyjump", "")),
        known_hosts_files=tuple(Path(f).expanduser()
                                for f in entry.get("userknownhostsfile", "").split()),
    )
