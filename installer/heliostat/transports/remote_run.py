"""Commands on the SSH host: captured (small probes) or streamed (the shipped heliostat),
with the remote exit code as the result."""

from __future__ import annotations

import select
from dataclasses import dataclass
from typing import BinaryIO

import paramiko

from heliostat.transports import TransportError

CHUNK = 64 * 1024
NO_EXIT_STATUS = -1  # what paramiko reports when the channel closed without one


class ConnectionLost(TransportError):
    """The SSH connection dropped before the remote command ended."""


@dataclass(frozen=True)
class Captured:
    exit_code: int
    stdout: bytes
    stderr: bytes


def _open(transport: paramiko.Transport, command: str) -> paramiko.Channel:
    try:
        channel = transport.open_session()
        channel.exec_command(command)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise ConnectionLost(f"the SSH connection dropped: {exc}") from None
    return channel


def run_captured(transport: paramiko.Transport, command: str, stdin: bytes = b"") -> Captured:
    channel = _open(transport, command)
    with channel:
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        out, err = bytearray(), bytearray()
        _pump(channel, out, err)
        code = channel.recv_exit_status()
    if code == NO_EXIT_STATUS:
        raise ConnectionLost(f"the SSH connection dropped while running {command!r}")
    return Captured(code, bytes(out), bytes(err))


def run_streamed(transport: paramiko.Transport, command: str, stdout: BinaryIO,
                 stderr: BinaryIO) -> int:
    """Runs `command`, copying its output to `stdout` and `stderr` as it comes. The
    channel's input stays open until the command ends: the shipped heliostat takes the
    end of its input as the end of the session (see `transports.local`)."""
    channel = _open(transport, command)
    with channel:
        _pump(channel, stdout, stderr)
        code = channel.recv_exit_status()
    if code == NO_EXIT_STATUS:
        raise ConnectionLost("the SSH connection dropped before the command on the host ended")
    return code


def _pump(channel: paramiko.Channel, stdout: BinaryIO | bytearray,
          stderr: BinaryIO | bytearray) -> None:
    def write(sink: BinaryIO | bytearray, data: bytes) -> None:
        if isinstance(sink, bytearray):
            sink += data
        else:
            sink.write(data)
            sink.flush()

    while True:
        # A channel is selectable: it wakes up on output, on stderr output and on close.
        select.select([channel], [], [], 5.0)
        while channel.recv_ready():
            write(stdout, channel.recv(CHUNK))
        while channel.recv_stderr_ready():
            write(stderr, channel.recv_stderr(CHUNK))
        ended = (channel.exit_status_ready() or channel.closed
                 or not channel.get_transport().is_active())
        if ended and not (channel.recv_ready() or channel.recv_stderr_ready()):
            break
    # What arrived with the close; a peer that sent its exit status but never its EOF
    # must not hang us.
    channel.settimeout(5.0)
    try:
        while data := channel.recv(CHUNK):
            write(stdout, data)
        while data := channel.recv_stderr(CHUNK):
            write(stderr, data)
    except TimeoutError:
        pass
