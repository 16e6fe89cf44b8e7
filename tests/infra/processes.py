"""A server process the session owns: started in its own process group, stopped or killed on
request, recorded in the run directory so a dead session's processes can be found."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.infra.run_dir import RunDir
from tests.infra.settings import NotProvisioned


class ManagedProcess:
    def __init__(
        self,
        name: str,
        argv: list[str],
        run: RunDir,
        *,
        user: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.run = run
        self.user = user
        self.env = env
        self.cwd = cwd
        self.log_path = run.subdir("logs") / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own process group: signals reach the whole server, and the group is what
                # leftovers.py kills.
                start_new_session=True,
                user=self.user,
                group=self.user,
                env=self.env,
                cwd=self.cwd,
            )
        self.run.record_process(self.name, self._process.pid)

    def send_signal(self, sig: signal.Signals) -> None:
        if self.running:
            assert self._process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, sig)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> None:
        """Asks the server to shut down with `sig` and waits; SIGKILL if it does not."""
        if not self.running:
            return
        assert self._process is not None
        self.send_signal(sig)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.run.forget_process(self.name)

    def kill(self) -> None:
        if self._process is None:
            return
        self.send_signal(signal.SIGKILL)
        self._process.wait(30)
        self.run.forget_process(self.name)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Polls `ready` until it is true; fails early, with the log, if the process exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise NotProvisioned(
                    f"{self.name} exited while waiting for {what}; log {self.log_path}:\n"
                    + self.log_tail()
                )
            if ready():
                return
            time.sleep(0.2)
        raise NotProvisioned(
            f"{self.name}: {what} not reached within {timeout:.0f}s; log {self.log_path}:\n"
            + self.log_tail()
        )


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now, and not given out before by this
    process (a server may not have bound the previous one yet)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class LoopbackServer:
    """A server a test session runs as its own process on loopback.

    Subclasses set `_process`, say what "ready" means (`_answers`, `_readiness`) and,
    where the server needs it, a gentler stop signal or longer timeouts.
    """

    _process: ManagedProcess
    stop_signal: signal.Signals = signal.SIGTERM
    start_timeout: float = 60
    stop_timeout: float = 60

    def _answers(self) -> bool:
        raise NotImplementedError

    @property
    def _readiness(self) -> str:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self._process.running

    def start(self) -> None:
        """Starts the process and waits until it answers; fails early, with its log."""
        self._process.start()
        self._process.wait_until(self._answers, self._readiness, self.start_timeout)

    def stop(self) -> None:
        """A clean shutdown with `stop_signal`, waiting for the process to exit."""
        self._process.stop(self.stop_signal, timeout=self.stop_timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown at all; the next start must recover."""
        self._process.kill()
