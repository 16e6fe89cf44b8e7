"""One directory per test session for everything that session starts, and its ownership.

A session is identified by an owner token, `<pid>-<start time>` of the pytest process, which
stays unique even when pids are reused. Processes and containers started for the session are
recorded under its directory (and labelled with the token), so `leftovers.py` can tell what
belongs to a session that is gone and remove it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

RUNS = Path(tempfile.gettempdir()) / "heliostat-testbed"
OWNER_LABEL = "heliostat.testbed.owner"


def process_token(pid: int) -> str | None:
    """`<pid>-<start time in clock ticks>` of a live process, None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return f"{pid}-{fields[19]}"


def token_alive(token: str) -> bool:
    pid, _, _ = token.partition("-")
    return pid.isdigit() and process_token(int(pid)) == token


class RunDir:
    """The running session's directory: `/tmp/heliostat-testbed/<owner token>/`."""

    def __init__(self) -> None:
        token = process_token(os.getpid())
        assert token is not None
        self.token = token
        self.path = RUNS / token
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "pids").mkdir(exist_ok=True)

    @property
    def labels(self) -> dict[str, str]:
        """Docker labels that mark a container or network as this session's."""
        return {OWNER_LABEL: self.token}

    def subdir(self, name: str) -> Path:
        path = self.path / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def record_process(self, name: str, pid: int) -> None:
        token = process_token(pid)
        if token:
            (self.path / "pids" / name).write_text(token)

    def forget_process(self, name: str) -> None:
        (self.path / "pids" / name).unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
