"""Resumable, verified SFTP uploads into a staging directory on the SSH host.

A file is staged under a name that holds its sha256 (`<digest16>-<name>`), and appears under
that name only after the host computed the same digest: a file already there is skipped. The
bytes go to `<name>.partial` first; a cut connection leaves it, and the next upload appends
to it from where the host's copy ends instead of starting over.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from heliostat.file_digest import READ_SIZE, sha256_file
from heliostat.transports import TransportError
from heliostat.transports.remote_run import ConnectionLost, run_captured

# Bigger SFTP writes than paramiko's 32 KiB mean fewer round trips; OpenSSH's sftp-server
# takes up to 255 KiB per write.
WRITE_SIZE = 252 * 1024
PARTIAL = ".partial"
# hashlib.file_digest is 3.11+; the host may have 3.10.
REMOTE_SHA256 = ("import hashlib,sys\nh=hashlib.sha256()\nf=open(sys.argv[1],'rb')\n"
                 "for b in iter(lambda: f.read(1<<20), b''): h.update(b)\nprint(h.hexdigest())")

Progress = Callable[[int, int], None]  # (bytes on the host so far, total)


class UploadDamaged(TransportError):
    """What arrived on the host does not have the file's digest."""


class NoSpaceOnHost(TransportError):
    """The staging directory's filesystem cannot take the rest of the file."""


@dataclass(frozen=True)
class Staged:
    remote_path: str
    size: int
    digest: str
    sent_bytes: int  # this time; 0 when the host already had it
    resumed_from: int  # bytes the host already had from an earlier, cut upload
    seconds: float

    @property
    def already_there(self) -> bool:
        return self.sent_bytes == 0 and self.resumed_from == self.size


def staged_name(name: str, digest: str) -> str:
    return f"{digest[:16]}-{name}"


def superseded(entries: list[tuple[str, float]], name: str, digest: str, now: float,
               partial_age: float = 86400.0) -> list[str]:
    """Staged copies of `name` with another digest: a later version replaced them. A
    partial one is kept for a day, in case another workstation resumes it."""
    current = staged_name(name, digest)
    pattern = re.compile(rf"[0-9a-f]{{16}}-{re.escape(name)}(?P<partial>{re.escape(PARTIAL)})?")
    stale = []
    for entry, modified in entries:
        match = pattern.fullmatch(entry)
        if match is None or entry in (current, current + PARTIAL):
            continue
        if match["partial"] and now - modified < partial_age:
            continue
        stale.append(entry)
    return sorted(stale)


def resume_offset(local_size: int, partial_size: int | None) -> int:
    """Where to continue: the host's partial copy, unless it cannot be a prefix of ours."""
    if partial_size is None or partial_size > local_size:
        return 0
    return partial_size


def remote_sha256(transport: paramiko.Transport, path: str) -> str:
    result = run_captured(transport, f"python3 -c {shlex.quote(REMOTE_SHA256)} "
                                     f"{shlex.quote(path)}")
    if result.exit_code != 0:
        raise TransportError(f"cannot compute the sha256 of {path} on the host: "
                             f"{result.stderr.decode(errors='replace').strip()}")
    return result.stdout.decode().strip()


def stage_file(transport: paramiko.Transport, sftp: paramiko.SFTPClient, local: Path,
               directory: str, digest: str | None = None,
               progress: Progress = lambda _done, _total: None,
               free_bytes: int | None = None) -> Staged:
    """`free_bytes`: what the host's filesystem has free, checked before sending."""
    started = time.monotonic()
    digest = digest or sha256_file(local)
    size = local.stat().st_size
    final = f"{directory}/{staged_name(local.name, digest)}"
    if _size(sftp, final) == size:
        return Staged(final, size, digest, 0, size, time.monotonic() - started)
    partial = final + PARTIAL
    offset = resume_offset(size, _size(sftp, partial))
    if free_bytes is not None and size - offset > free_bytes:
        raise NoSpaceOnHost(f"{local.name} needs {(size - offset) / 1e6:.0f} MB more in "
                            f"{directory} on the host, which has {free_bytes / 1e6:.0f} MB "
                            "free: free some space there")
    sent = _send(sftp, local, partial, offset, size, progress)
    arrived = remote_sha256(transport, partial)
    if arrived != digest and offset:
        # The earlier, cut upload left bytes that are not ours: start over once.
        offset, sent = 0, _send(sftp, local, partial, 0, size, progress)
        arrived = remote_sha256(transport, partial)
    if arrived != digest:
        _remove(sftp, partial)
        raise UploadDamaged(f"{local.name} arrived damaged on the host (sha256 {arrived[:16]}… "
                            f"instead of {digest[:16]}…); run the command again to upload "
                            "it afresh")
    try:
        sftp.posix_rename(partial, final)
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise ConnectionLost(f"could not move {partial} into place on the host: {exc}") \
            from None
    _remove_superseded(sftp, directory, local.name, digest)
    return Staged(final, size, digest, sent, offset, time.monotonic() - started)


def _remove_superseded(sftp: paramiko.SFTPClient, directory: str, name: str,
                       digest: str) -> None:
    """Old versions of a bundle would fill the host's disk, one upgrade after another."""
    try:
        entries = [(a.filename, float(a.st_mtime or 0)) for a in sftp.listdir_attr(directory)]
    except (OSError, paramiko.SSHException, EOFError):
        return
    for entry in superseded(entries, name, digest, time.time()):
        _remove(sftp, f"{directory}/{entry}")


def _send(sftp: paramiko.SFTPClient, local: Path, partial: str, offset: int, size: int,
          progress: Progress) -> int:
    sent = 0
    try:
        with local.open("rb") as source, sftp.open(partial, "r+b" if offset else "wb") as sink:
            sink.MAX_REQUEST_SIZE = WRITE_SIZE
            # Writes are not acknowledged one by one; close() waits for every ack.
            sink.set_pipelined(True)
            if offset:
                sink.seek(offset)
                source.seek(offset)
            progress(offset, size)
            while block := source.read(READ_SIZE):
                sink.write(block)
                sent += len(block)
                progress(offset + sent, size)
    except (OSError, paramiko.SSHException, EOFError) as exc:
        done = offset + sent
        raise ConnectionLost(f"the upload of {local.name} stopped at "
                             f"{100 * done // max(size, 1)}% ({exc or 'connection lost'}); run "
                             "the command again: it resumes where it stopped") from None
    return sent


def _size(sftp: paramiko.SFTPClient, path: str) -> int | None:
    try:
        return sftp.stat(path).st_size
    except FileNotFoundError:
        return None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        raise ConnectionLost(f"cannot look at {path} on the host: {exc}") from None


def _remove(sftp: paramiko.SFTPClient, path: str) -> None:
    # If it stays, the next upload finds it damaged again and starts over.
    with contextlib.suppress(OSError, paramiko.SSHException, EOFError):
        sftp.remove(path)


class UploadMeter:
    """`progress` for stage_file that reports speed and ETA at most once a second."""

    def __init__(self, name: str, show: Callable[[str], None], every: float = 1.0) -> None:
        self.name, self.show, self.every = name, show, every
        self.started = time.monotonic()
        self.first: int | None = None
        self.last_shown = float("-inf")

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = done
            if 0 < done < total:
                self.show(f"{self.name}: resuming at {done / 1e6:.1f} of {total / 1e6:.1f} MB")
            return
        if now - self.last_shown < self.every or done >= total:
            return
        self.last_shown = now
        speed = (done - self.first) / max(now - self.started, 1e-6)
        eta = (total - done) / speed if speed else float("inf")
        self.show(f"{self.name}: {100 * done // max(total, 1)}% of {total / 1e6:.1f} MB, "
                  f"{speed / 1e6:.1f} MB/s, ETA {eta:.0f}s")
