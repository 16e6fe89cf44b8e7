"""What the compose driver raises about the engine, importable without the docker package
(the CLI names it in its error handling for every command, Kubernetes ones included)."""

from __future__ import annotations


class EngineError(Exception):
    """The engine refused or failed a call; the message says which object and why."""
