"""The local transport: heliostat runs on the Docker host and uses its engine directly.

That is also how the ssh transport ends: the zipapp it shipped runs on the host with
ON_HOST_VARIABLE set, and `follow_session()` makes that run end as a SIGKILLed local one
would if the SSH connection drops (the revision stays pending; the next command resumes
it), rather than going on unseen or stopping at its next line of output.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

# Set by the ssh transport on the command it runs on the host.
ON_HOST_VARIABLE = "HELIOSTAT_SHIPPED_BY"
# "<skew> <uncertainty>": the host's clock minus the workstation's, measured by the ssh
# transport, for doctor's workstation-clock check.
WORKSTATION_CLOCK_VARIABLE = "HELIOSTAT_WORKSTATION_CLOCK"


def is_local(host: str) -> bool:
    """`target.compose.host` names this machine's engine (or heliostat runs on the host)."""
    return host == "local" or bool(os.environ.get(ON_HOST_VARIABLE))


def shipped_run() -> bool:
    return bool(os.environ.get(ON_HOST_VARIABLE))


def workstation_clock() -> tuple[float, float] | None:
    """(skew, uncertainty) in seconds when shipped over SSH, else None."""
    try:
        skew, uncertainty = os.environ[WORKSTATION_CLOCK_VARIABLE].split()
        return float(skew), float(uncertainty)
    except (KeyError, ValueError):
        return None


def follow_session() -> None:
    """Ends this process when its standard input ends: the ssh transport keeps that
    channel open for as long as the command runs, so its end means the session is gone."""

    def wait_for_end() -> None:
        while os.read(sys.stdin.fileno(), 4096):
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait_for_end, name="ssh-session", daemon=True).start()
