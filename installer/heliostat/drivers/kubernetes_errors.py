"""What the kubernetes driver raises, importable without the kubernetes package (the CLI
names these in its error handling for every command, Compose ones included)."""

from __future__ import annotations


class KubernetesError(Exception):
    """The cluster cannot do what was asked; the message says what and what to do."""


class KubernetesUnreachable(KubernetesError):
    """The API server cannot be used: no kubeconfig, an unknown context, a refused
    connection."""


class ObjectRefused(KubernetesError):
    """The API server refused a change to one object (invalid, forbidden, a conflict)."""

    def __init__(self, key: str, message: str, status: int) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.status = status
