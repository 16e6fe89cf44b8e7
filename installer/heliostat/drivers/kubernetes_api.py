"""The connection to a Kubernetes API server, as kubectl makes it: a kubeconfig file (the
KUBECONFIG variable, else ~/.kube/config), one of its contexts, and what that context's
user authenticates with (client certificates, tokens, credential plugins)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from heliostat.drivers.kubernetes_errors import KubernetesUnreachable

FIELD_MANAGER = "heliostat"


@dataclass(frozen=True)
class Connection:
    api: client.ApiClient
    context: str
    server: str

    def close(self) -> None:
        self.api.close()


def kubeconfig_path(configured: str = "") -> Path:
    """The kubeconfig to read: the one configured, else $KUBECONFIG's first, else kubectl's
    default."""
    if configured:
        return Path(configured).expanduser()
    from_environment = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(from_environment or "~/.kube/config").expanduser()


def connect(kubeconfig: str = "", context: str = "") -> Connection:
    path = kubeconfig_path(kubeconfig)
    if not path.is_file():
        raise KubernetesUnreachable(
            f"no kubeconfig at {path}: set target.kubernetes.kubeconfig, --kubeconfig or "
            "KUBECONFIG to the file kubectl uses for this cluster")
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=str(path), context=context or None,
                                client_configuration=configuration, persist_config=False)
        contexts, active = config.list_kube_config_contexts(config_file=str(path))
    except ConfigException as error:
        raise KubernetesUnreachable(f"{path}: {error}") from None
    name = context or active["name"]
    if not any(c["name"] == name for c in contexts):
        known = ", ".join(sorted(c["name"] for c in contexts)) or "none"
        raise KubernetesUnreachable(f"{path} has no context {name!r} (it has: {known})")
    # Fail fast on a dead server; an apply sets longer timeouts per request where needed.
    configuration.retries = 0
    return Connection(client.ApiClient(configuration), name, configuration.host)


def api_error(error: ApiException) -> str:
    """The API server's own message (the `message` of its Status), else the HTTP reason."""
    import json

    try:
        status: dict[str, Any] = json.loads(error.body or "")
        return str(status.get("message") or error.reason)
    except ValueError:
        return f"{error.status} {error.reason}"
