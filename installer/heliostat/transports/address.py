"""SSH addresses as platform.yaml and the command line write them: `ssh://user@host:port`
for the target, `user@host:port` for each jump host."""

from __future__ import annotations

import re
from dataclasses import dataclass

from heliostat.transports import TransportError

_ADDRESS = re.compile(r"(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9.-]+)"
                      r"(?::(?P<port>[0-9]{1,5}))?")


@dataclass(frozen=True)
class SshAddress:
    """Where to connect. Unset parts come from ~/.ssh/config, then from SSH's defaults."""

    host: str
    port: int | None = None
    user: str | None = None

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.host}{port}"


def parse_address(text: str) -> SshAddress:
    """`[ssh://][user@]host[:port]`."""
    match = _ADDRESS.fullmatch(text.removeprefix("ssh://"))
    if match is None:
        raise TransportError(f"{text!r} is not an SSH address: write [ssh://][user@]host[:port]")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        raise TransportError(f"{text!r}: port {port} is not between 1 and 65535")
    return SshAddress(match["host"], port, match["user"])


def parse_jumps(text: str) -> tuple[SshAddress, ...]:
    """OpenSSH's ProxyJump value: hops separated by commas, `none` for no hop."""
    if text.strip().lower() in ("", "none"):
        return ()
    return tuple(parse_address(hop.strip()) for hop in text.split(","))


def known_hosts_name(host: str, port: int) -> str:
    """The name a host is recorded under in known_hosts, as OpenSSH writes it."""
    return host if port == 22 else f"[{host}]:{port}"
