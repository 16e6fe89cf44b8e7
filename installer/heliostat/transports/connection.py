"""An authenticated SSH connection to a host, through zero or more jump hosts.

Each hop's key is checked (`host_keys`) before anything is sent to it, and each hop
authenticates with the same credentials: a key file named in platform.yaml, else the
agent's keys and the IdentityFile / default key files. The transport prefers AES-GCM and
a large window, which is what makes SFTP uploads fast enough.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from heliostat.transports import TransportError
from heliostat.transports.address import SshAddress
from heliostat.transports.host_keys import KnownKeys, check_host_key
from heliostat.transports.ssh_config import (
    DEFAULT_KEY_FILES,
    DEFAULT_KNOWN_HOSTS,
    ResolvedHost,
    resolve,
)

CONNECT_TIMEOUT = 15.0
KEEPALIVE_SECONDS = 15
WINDOW_SIZE = 64 * 1024 * 1024
MAX_PACKET_SIZE = 256 * 1024 - 1024  # below OpenSSH's limit of 256 KiB per packet
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr",
                     "aes256-ctr")


class AuthRefused(TransportError):
    """No key the user has was accepted by the host."""


class HostUnreachable(TransportError):
    """No TCP connection or no SSH handshake with the host."""


@dataclass(frozen=True)
class Credentials:
    key_file: Path | None = None  # only this key when given; else agent, then key files
    passphrase_file: Path | None = None
    # Asks for a key's passphrase; None: ask on the terminal, if there is one.
    ask_passphrase: Callable[[Path], str] | None = None


@dataclass(frozen=True)
class HostKeyPolicy:
    known_hosts: tuple[Path, ...] = ()  # empty: ~/.ssh/config's or OpenSSH's default files
    accepted: frozenset[str] = frozenset()  # SHA256:... fingerprints trusted as given


@dataclass
class SshConnection:
    """The last hop's transport is the target's; the others carry it."""

    target: ResolvedHost
    transports: list[paramiko.Transport] = field(default_factory=list)

    @property
    def transport(self) -> paramiko.Transport:
        return self.transports[-1]

    def close(self) -> None:
        for transport in reversed(self.transports):
            transport.close()

    def __enter__(self) -> SshConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def connect(address: SshAddress, jumps: tuple[SshAddress, ...], config: paramiko.SSHConfig,
            credentials: Credentials, policy: HostKeyPolicy,
            progress: Callable[[str], None] = lambda _: None) -> SshConnection:
    """Connects hop by hop. Jumps come from platform.yaml, else from ~/.ssh/config's
    ProxyJump of the target."""
    target = resolve(address, config)
    hops = [resolve(hop, config) for hop in (jumps or target.proxy_jump)]
    connection = SshConnection(target)
    try:
        for hop in [*hops, target]:
            through = connection.transports[-1] if connection.transports else None
            progress(f"connecting to {hop}" + (" through the jump host" if through else ""))
            transport = _handshake(_open_socket(hop, through), hop, policy)
            connection.transports.append(transport)
            _authenticate(transport, hop, credentials)
            transport.set_keepalive(KEEPALIVE_SECONDS)
    except BaseException:
        connection.close()
        raise
    return connection


def _open_socket(hop: ResolvedHost,
                 through: paramiko.Transport | None) -> socket.socket | paramiko.Channel:
    if through is not None:
        try:
            return through.open_channel("direct-tcpip", (hop.hostname, hop.port),
                                        ("127.0.0.1", 0), timeout=CONNECT_TIMEOUT)
        except paramiko.ChannelException as exc:
            raise HostUnreachable(f"the jump host cannot reach {hop.hostname}:{hop.port} "
                                  f"({exc.text}): check the address, and that the jump "
                                  "host allows TCP forwarding") from None
        except paramiko.SSHException as exc:
            raise HostUnreachable(f"the jump host dropped the connection to {hop}: {exc}") \
                from None
    try:
        return socket.create_connection((hop.hostname, hop.port), timeout=CONNECT_TIMEOUT)
    except socket.gaierror as exc:
        raise HostUnreachable(f"cannot resolve {hop.hostname} ({exc.strerror}): check the "
                              "host name in platform.yaml or ~/.ssh/config") from None
    except OSError as exc:
        raise HostUnreachable(f"cannot reach {hop.hostname}:{hop.port} "
                              f"({exc.strerror or exc}): check that the host is up, sshd "
                              "listens on that port, and a jump host is given if one is "
                              "needed") from None


def _handshake(sock: socket.socket | paramiko.Channel, hop: ResolvedHost,
               policy: HostKeyPolicy) -> paramiko.Transport:
    transport = paramiko.Transport(sock, default_window_size=WINDOW_SIZE,
                                   default_max_packet_size=MAX_PACKET_SIZE)
    options = transport.get_security_options()
    offered = tuple(options.ciphers)
    options.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in offered) + tuple(
        c for c in offered if c not in PREFERRED_CIPHERS)
    try:
        transport.start_client(timeout=CONNECT_TIMEOUT)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        raise HostUnreachable(f"no SSH handshake with {hop.hostname}:{hop.port} ({exc}): "
                              "is sshd listening there?") from None
    files = policy.known_hosts or hop.known_hosts_files or tuple(
        Path(f).expanduser() for f in DEFAULT_KNOWN_HOSTS)
    key = transport.get_remote_server_key()
    try:
        check_host_key(key, KnownKeys.read(files, hop.hostname, hop.port), policy.accepted,
                       f"{hop.hostname}:{hop.port}", files)
    except BaseException:
        transport.close()
        raise
    return transport


def _authenticate(transport: paramiko.Transport, hop: ResolvedHost,
                  credentials: Credentials) -> None:
    tried: list[str] = []
    with _candidate_keys(hop, credentials) as candidates:
        for label, load in candidates:
            key = load()
            if key is None:
                continue
            try:
                transport.auth_publickey(hop.user, key)
            except paramiko.BadAuthenticationType as exc:
                raise AuthRefused(f"{hop} does not accept public keys (only "
                                  f"{', '.join(exc.allowed_types) or 'nothing'}): heliostat "
                                  "logs in with keys only") from None
            except paramiko.AuthenticationException:
                tried.append(label)
                continue
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise HostUnreachable(f"{hop} dropped the connection while logging in: "
                                      f"{exc}") from None
            if transport.is_authenticated():
                return
    if not tried:
        raise AuthRefused(f"no SSH key to log in to {hop} with: start ssh-agent and add your "
                          "key (ssh-add), or name one in target.compose.ssh.key_file")
    raise AuthRefused(f"{hop} refused every key offered ({', '.join(tried)}): add your "
                      f"public key to ~{hop.user}/.ssh/authorized_keys on that host, or name "
                      "the right one in target.compose.ssh.key_file")


LoadKey = Callable[[], "paramiko.PKey | None"]


@contextlib.contextmanager
def _candidate_keys(hop: ResolvedHost,
                    credentials: Credentials) -> Iterator[list[tuple[str, LoadKey]]]:
    """(label, loader) pairs in the order OpenSSH offers them; loaders run lazily so a
    passphrase is asked for only if the keys before it were refused."""
    if credentials.key_file is not None:
        path = credentials.key_file.expanduser()
        yield [(str(path), lambda: load_key(path, credentials, required=True))]
        return
    try:
        agent = paramiko.Agent()
    except paramiko.SSHException:  # SSH_AUTH_SOCK names a dead agent: OpenSSH skips it too
        agent = None
    try:
        candidates: list[tuple[str, LoadKey]] = []
        if agent is not None and not hop.identities_only:
            for key in agent.get_keys():
                candidates.append((f"agent key {key.get_name()}", lambda key=key: key))
        files = hop.identity_files or tuple(Path(f).expanduser() for f in DEFAULT_KEY_FILES)
        for path in files:
            if path.is_file():
                candidates.append((str(path), lambda path=path: load_key(
                    path, credentials, required=bool(hop.identity_files))))
        yield candidates
    finally:
        if agent is not None:
            agent.close()


def load_key(path: Path, credentials: Credentials, required: bool) -> paramiko.PKey | None:
    """The private key at `path`, decrypted with the passphrase file's content or a
    prompted passphrase. None for an optional (default) key that cannot be used."""
    try:
        return paramiko.PKey.from_path(str(path))
    except (paramiko.PasswordRequiredException, TypeError):
        pass  # cryptography says "password was not provided" with a TypeError
    except FileNotFoundError:
        if required:
            raise AuthRefused(f"key file {path} does not exist: fix "
                              "target.compose.ssh.key_file or IdentityFile") from None
        return None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        if required:
            raise AuthRefused(f"cannot read key file {path}: {exc}") from None
        return None
    passphrase = _passphrase(path, credentials)
    try:
        return paramiko.PKey.from_path(str(path), password=passphrase.encode("utf-8"))
    except (paramiko.SSHException, ValueError, TypeError):
        where = (f"the passphrase in {credentials.passphrase_file}"
                 if credentials.passphrase_file else "the passphrase given")
        raise AuthRefused(f"cannot decrypt key file {path} with {where}: wrong passphrase") \
            from None


def _passphrase(path: Path, credentials: Credentials) -> str:
    if credentials.passphrase_file is not None:
        source = credentials.passphrase_file.expanduser()
        try:
            # One trailing newline is how editors end a file, not part of a passphrase.
            return source.read_text(encoding="utf-8").removesuffix("\n")
        except OSError as exc:
            raise AuthRefused(f"cannot read the passphrase file {source} "
                              f"({exc.strerror or exc}): fix "
                              "target.compose.ssh.key_passphrase_file") from None
    if credentials.ask_passphrase is not None:
        return credentials.ask_passphrase(path)
    if not sys.stdin.isatty():
        raise AuthRefused(f"key file {path} is protected by a passphrase and there is no "
                          "terminal to ask for it: add the key to ssh-agent, or name a file "
                          "holding it in target.compose.ssh.key_passphrase_file")
    return getpass.getpass(f"Passphrase for {path}: ")
