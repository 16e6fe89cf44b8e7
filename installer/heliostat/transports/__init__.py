"""How heliostat reaches the Docker host of a Compose target.

`local`: heliostat runs on the Docker host itself and talks to its engine directly.
`ssh`: heliostat ships itself (the zipapp), the platform.yaml and the bundle to a staging
directory on the host over SFTP, runs the shipped zipapp there with the host's own
`python3`, and streams its output and exit code back (`heliostat.transports.ssh_run`).
"""

from __future__ import annotations


class TransportError(Exception):
    """The Docker host cannot be reached or used as asked; the message says what to do."""
