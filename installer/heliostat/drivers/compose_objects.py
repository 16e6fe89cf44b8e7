"""The rendered Compose file, read the way `docker compose` reads it, as container objects.

One object per container, as docker-compose v1 modelled a project → service → container:
a stateful service is rendered as one Compose service per replica (`kafka-0`), each one
object under that key; a stateless service with `deploy.replicas: N` becomes N objects
`event-api-1` … `event-api-N` (Compose's own numbering); a job or a sidecar is one object.
Each object's spec is plain JSON holding everything the engine needs to create the
container, so its hash changes exactly when the container has to change.

Pure: no engine calls, so `diff` and the unit tests need no Docker.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from heliostat.driver import DataBackup, DesiredObject, spec_hash

COMPOSE_FILE = "compose.yaml"
SERVICE_LABEL = "io.heliostat.service"
KIND_LABEL = "io.heliostat.kind"
BACKUP_FIELD = "x-heliostat-backup"  # an extension field: docker compose ignores it
DEFAULT_JOB_TIMEOUT = 900.0  # seconds a job (a migration) may run before its gate fails
START_ALLOWANCE = 30.0  # seconds for the engine to create and start a container
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)")
_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


class ComposeFileError(Exception):
    """The manifests are not a Compose file this driver can apply."""


@dataclass(frozen=True)
class ComposeProject:
    """What the file asks for besides containers: the objects the containers need."""

    name: str
    objects: tuple[DesiredObject, ...]
    networks: dict[str, dict[str, str]]  # engine name -> labels
    volumes: dict[str, dict[str, Any]]  # engine name -> labels


def read_project(manifests: Mapping[str, str]) -> ComposeProject:
    """The containers, networks and volumes of the rendered `compose.yaml`."""
    if not manifests:
        return ComposeProject("", (), {}, {})
    if COMPOSE_FILE not in manifests:
        raise ComposeFileError(f"the manifests hold no {COMPOSE_FILE} "
                               f"(they have {', '.join(sorted(manifests))})")
    try:
        document = yaml.safe_load(manifests[COMPOSE_FILE])
    except yaml.YAMLError as exc:
        raise ComposeFileError(f"{COMPOSE_FILE} is not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        raise ComposeFileError(f"{COMPOSE_FILE} has no `services` mapping")
    project = str(document.get("name") or "")
    if not project:
        raise ComposeFileError(f"{COMPOSE_FILE} has no project `name`")
    networks = {logical: (_network_name(project, logical, spec or {}),
                          {str(k): str(v) for k, v in ((spec or {}).get("labels") or {}).items()})
                for logical, spec in (document.get("networks") or {}).items()}
    volumes = {f"{project}_{logical}": dict((spec or {}).get("labels") or {})
               for logical, spec in (document.get("volumes") or {}).items()}
    configs = {logical: unescape(str((spec or {}).get("content", "")))
               for logical, spec in (document.get("configs") or {}).items()}
    secrets = {logical: str((spec or {}).get("file", ""))
               for logical, spec in (document.get("secrets") or {}).items()}
    reader = _ServiceReader(project, document["services"], networks, volumes, configs, secrets)
    objects = [obj for name in document["services"] for obj in reader.objects(name)]
    return ComposeProject(project, tuple(objects), dict(networks.values()), volumes)


def unescape(value: Any) -> Any:
    """Compose's `$$` is a literal `$` (the profile escapes every one it renders)."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [unescape(item) for item in value]
    if isinstance(value, dict):
        return {key: unescape(item) for key, item in value.items()}
    return value


def duration_seconds(text: str | int | float | None) -> float:
    """A Compose duration (`10s`, `1m30s`, `500ms`) in seconds."""
    if text is None:
        return 0.0
    if isinstance(text, (int, float)):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ComposeFileError(f"not a Compose duration: {text!r}")
    return sum(float(number) * _SECONDS[unit] for number, unit in parts)


def health_timeout(spec: Mapping[str, Any]) -> float:
    """How long the health gate of a container with this spec may take: Docker calls it
    unhealthy after its start period plus `retries` failed checks; a little more is
    allowed for starting it. A job is gated on completing, which has no such bound."""
    if spec["kind"] == "job":
        return DEFAULT_JOB_TIMEOUT
    check = spec.get("healthcheck")
    if not check:
        return START_ALLOWANCE
    interval = duration_seconds(check.get("interval", "30s"))
    timeout = duration_seconds(check.get("timeout", "30s"))
    start = duration_seconds(check.get("start_period", "0s"))
    retries = int(check.get("retries", 3))
    return start + (retries + 1) * (interval + timeout) + START_ALLOWANCE


def _network_name(project: str, logical: str, spec: Mapping[str, Any]) -> str:
    return str(spec.get("name") or f"{project}_{logical}")


class _ServiceReader:
    def __init__(self, project: str, services: dict[str, Any],
                 networks: dict[str, tuple[str, dict[str, str]]],
                 volumes: dict[str, dict[str, Any]], configs: dict[str, str],
                 secrets: dict[str, str]) -> None:
        self.project = project
        self.services = services
        self.networks = networks
        self.volumes = volumes
        self.configs = configs
        self.secrets = secrets

    def service_of(self, name: str) -> str:
        entry = self.services.get(name)
        if not isinstance(entry, dict):
            raise ComposeFileError(f"services.{name} is referenced but not defined")
        return str((entry.get("labels") or {}).get(SERVICE_LABEL) or name)

    def objects(self, name: str) -> list[DesiredObject]:
        entry = self.services[name]
        if not isinstance(entry, dict) or not entry.get("image"):
            raise ComposeFileError(f"services.{name} has no image")
        labels = {str(k): str(v) for k, v in (entry.get("labels") or {}).items()}
        service = labels.get(SERVICE_LABEL, name)
        kind = labels.get(KIND_LABEL, "sidecar" if "io.heliostat.sidecar" in labels
                          else "stateless")
        depends = sorted({self.service_of(d) for d in (entry.get("depends_on") or {})}
                         - {service})
        base = self.spec(name, entry, labels, kind)
        deploy = entry.get("deploy") or {}
        if kind == "stateless":
            replicas = int(deploy.get("replicas", 1))
            keys = [(f"{name}-{index}", index) for index in range(1, replicas + 1)]
        else:
            keys = [(name, None)]
        backup = self.backup(name, entry)
        host = base["network_mode"]["key"] if base["network_mode"] else None
        return [DesiredObject(key, service, {**base, "replica": index}, tuple(depends),
                              health_timeout=health_timeout(base), backup=backup,
                              applied_after=(host,) if host else ())
                for key, index in keys]

    @staticmethod
    def backup(name: str, entry: dict[str, Any]) -> DataBackup | None:
        declared = entry.get(BACKUP_FIELD)
        if declared is None:
            return None
        try:
            dump, restore = (tuple(str(arg) for arg in unescape(declared[part]))
                             for part in ("dump", "restore"))
        except (TypeError, KeyError):
            raise ComposeFileError(f"services.{name}.{BACKUP_FIELD} needs `dump` and "
                                   "`restore` commands") from None
        if not dump or not restore:
            raise ComposeFileError(f"services.{name}.{BACKUP_FIELD}: empty command")
        return DataBackup(dump, restore)

    def spec(self, name: str, entry: dict[str, Any], labels: dict[str, str],
             kind: str) -> dict[str, Any]:
        limits = ((entry.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        update = (entry.get("deploy") or {}).get("update_config") or {}
        spec: dict[str, Any] = {
            "kind": kind,
            "image": str(entry["image"]),
            "pull_policy": str(entry.get("pull_policy", "missing")),
            "command": unescape(entry.get("command")),
            "hostname": entry.get("hostname"),
            "environment": {str(k): "" if v is None else str(v)
                            for k, v in unescape(entry.get("environment") or {}).items()},
            "labels": labels,
            "networks": self._networks(name, entry),
            "network_mode": None,
            "ports": [self._port(p) for p in entry.get("ports") or []],
            "mounts": [self._mount(name, m) for m in entry.get("volumes") or []],
            "configs": [self._config(name, c) for c in entry.get("configs") or []],
            "secrets": [self._secret(name, s) for s in entry.get("secrets") or []],
            "healthcheck": unescape(entry.get("healthcheck")),
            "restart": str(entry.get("restart", "no")),
            "cpus": float(limits["cpus"]) if "cpus" in limits else None,
            "memory": str(limits["memory"]) if "memory" in limits else None,
            "update_order": str(update.get("order", "stop-first")),
        }
        mode = entry.get("network_mode")
        if mode:
            spec["networks"] = {}
            spec["network_mode"] = self._network_mode(name, str(mode))
        return spec

    def _networks(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        wanted = entry.get("networks") or {}
        if isinstance(wanted, list):
            wanted = dict.fromkeys(wanted)
        networks = {}
        for logical, options in wanted.items():
            if logical not in self.networks:
                raise ComposeFileError(f"services.{name}: network {logical} is not defined")
            aliases = list((options or {}).get("aliases") or [])
            engine_name, labels = self.networks[logical]
            networks[engine_name] = {"aliases": [str(a) for a in aliases], "labels": labels}
        return networks

    def _network_mode(self, name: str, mode: str) -> dict[str, Any]:
        """A sidecar shares its main container's network namespace, which dies with it:
        the main container's spec hash is part of the sidecar's, so they change together."""
        kind, _, target = mode.partition(":")
        if kind != "service" or target not in self.services:
            raise ComposeFileError(f"services.{name}: network_mode {mode!r} is not supported")
        main = self.objects(target)
        if len(main) != 1:
            raise ComposeFileError(f"services.{name}: shares the network of {target}, "
                                   "which has several containers")
        return {"key": main[0].key, "spec_hash": spec_hash(main[0].spec)}

    @staticmethod
    def _port(port: Any) -> dict[str, Any]:
        if not isinstance(port, dict):
            raise ComposeFileError(f"ports: only the long syntax is supported, not {port!r}")
        return {"target": int(port["target"]), "published": int(port["published"]),
                "protocol": str(port.get("protocol", "tcp"))}

    def _mount(self, name: str, mount: Any) -> dict[str, Any]:
        if not isinstance(mount, dict):
            raise ComposeFileError(f"services.{name}.volumes: only the long syntax is "
                                   f"supported, not {mount!r}")
        kind = mount.get("type", "volume")
        if kind == "volume":
            source = f"{self.project}_{mount['source']}"
            if source not in self.volumes:
                raise ComposeFileError(f"services.{name}: volume {mount['source']} is not "
                                       "defined under `volumes`")
        elif kind == "bind":
            source = str(mount["source"])
        else:
            raise ComposeFileError(f"services.{name}: mounts of type {kind} are not supported")
        labels = self.volumes[source] if kind == "volume" else {}
        return {"type": kind, "source": source, "target": str(mount["target"]),
                "read_only": bool(mount.get("read_only", False)),
                "labels": {str(k): str(v) for k, v in labels.items()}}

    def _config(self, name: str, config: Any) -> dict[str, Any]:
        source = config["source"] if isinstance(config, dict) else config
        if source not in self.configs:
            raise ComposeFileError(f"services.{name}: config {source} is not defined")
        target = config.get("target", f"/{source}") if isinstance(config, dict) else f"/{source}"
        # The digest names the file on the host: a new content is a new file, so a
        # container being swapped out keeps reading the one it started with.
        digest = hashlib.sha256(self.configs[source].encode("utf-8")).hexdigest()
        return {"source": str(source), "target": str(target), "digest": digest,
                "content": self.configs[source]}

    def _secret(self, name: str, secret: Any) -> dict[str, Any]:
        source = secret["source"] if isinstance(secret, dict) else secret
        if source not in self.secrets or not self.secrets[source]:
            raise ComposeFileError(f"services.{name}: secret {source} has no `file`")
        target = (secret.get("target") if isinstance(secret, dict) else None) \
            or f"/run/secrets/{source}"
        return {"source": str(source), "file": self.secrets[source], "target": str(target)}
