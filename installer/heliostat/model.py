"""The neutral service model: every enabled module's services, evaluated with the config.

Profiles turn this model into a target's manifests; nothing here knows about Compose,
Kubernetes or Marathon except the host names a profile's `naming` gives services.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from heliostat import __version__
from heliostat.catalog import Module, Profile, load_modules, load_profile
from heliostat.config import PlatformConfig
from heliostat.problems import InvalidInput
from heliostat.schema import apply_defaults
from heliostat.stores import STORES, resolve_stores, store_secrets
from heliostat.templating import TemplateFailure, evaluate_values, make_environment, render_file
from heliostat.yaml_source import format_path, load_yaml_file

SERVICE_SCHEMA = Path(__file__).parent / "service.schema.yaml"
SECRETS_DIR = "/run/secrets"


class CatalogError(Exception):
    """A module.yaml or profile template is wrong: a bug in heliostat's catalog, not in input."""


@dataclass(frozen=True)
class Service:
    """One service of the neutral model; its fields mirror service.schema.yaml."""

    name: str
    module: str
    kind: str
    image: str
    image_ref: str
    replicas: int
    command: list[str] | None
    env: dict[str, str]
    secrets: list[str]
    ports: list[dict[str, Any]]
    health: dict[str, Any] | None
    ready: dict[str, Any] | None
    metrics: dict[str, Any] | None
    volumes: list[dict[str, Any]]
    host_folders: list[dict[str, Any]]
    files: list[dict[str, Any]]
    sidecars: list[dict[str, Any]]
    depends_on: list[str]
    resources: dict[str, Any]
    update: dict[str, Any]
    orchestrator_access: bool
    role: str | None
    backup: dict[str, list[str]] | None = None

    @property
    def files_digest(self) -> str:
        """Changes whenever a mounted file changes, so targets can roll the service."""
        if not self.files:
            return ""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f['path']}\0{f['content']}\0".encode())
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class PlatformModel:
    name: str
    profile: str
    version: str
    values: dict[str, Any]
    services: tuple[Service, ...]
    secrets: dict[str, dict[str, Any]]
    routes: tuple[dict[str, Any], ...]
    settings: dict[str, Any] = field(default_factory=dict)  # target-level: namespace, group…

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def waves(self) -> list[list[str]]:
        """Services in dependency order: each wave depends only on earlier waves."""
        return dependency_waves({s.name: s.depends_on for s in self.services})


def dependency_waves(depends_on: dict[str, list[str]]) -> list[list[str]]:
    remaining = dict(depends_on)
    placed: set[str] = set()
    waves = []
    while remaining:
        wave = [name for name, deps in remaining.items() if set(deps) <= placed]
        if not wave:
            raise CatalogError(f"services depend on each other in a cycle: {sorted(remaining)}")
        waves.append(wave)
        placed.update(wave)
        for name in wave:
            del remaining[name]
    return waves


@cache
def _service_schema() -> dict[str, Any]:
    return load_yaml_file(SERVICE_SCHEMA, "service.schema.yaml", trusted=True).data


@cache
def _service_validator(part: tuple[str, ...]) -> Any:
    from jsonschema import Draft202012Validator

    schema = _service_schema()
    for key in part:
        schema = schema["properties"][key]
    return Draft202012Validator(schema)


def build_model(config: PlatformConfig) -> PlatformModel:
    values = config.values
    profile = load_profile(config.profile)
    settings = _target_settings(values)
    host = _host_namer(profile, values["name"], settings)
    modules = [m for m in load_modules() if m.name in config.enabled_modules()]
    users = {store: [m.name for m in modules if store in m.uses] for store in STORES}
    stores = resolve_stores(values, users, host)
    context = {
        "platform": {"name": values["name"], "profile": config.profile, "version": __version__,
                     "dns_resolver": profile.settings["dns_resolver"], **settings},
        "modules": values["modules"],
        "gateway": values["gateway"],
        "stores": stores,
        "host": host,
        "secrets_dir": SECRETS_DIR,
    }
    specs: list[tuple[Module, str, dict[str, Any]]] = []
    for module in modules:
        module_context = {**context, "config": values["modules"].get(module.name, {})}
        for name, spec in module.services.items():
            # `when` first: the rest may only make sense when it holds.
            if _evaluate(module, name, spec.get("when", True), module_context, ("when",)):
                evaluated = _evaluate(module, name, spec, module_context)
                evaluated.pop("when", None)
                specs.append((module, name, evaluated))
    services = [_service(module, name, spec, values, stores) for module, name, spec in specs]
    _check_dependencies(services)
    _check_image_overrides(config, services)
    routes = tuple({"service": s.name, **p} for s in services for p in s.ports if p["public"])
    files_context = {**context, "services": services, "routes": routes,
                     "scrape_jobs": scrape_jobs(services),
                     "peers": _peers_namer(profile, host)}
    services = [_with_files(s, module, files_context)
                for s, (module, _, _) in zip(services, specs, strict=True)]
    secrets = _secrets(modules, stores, services)
    model = PlatformModel(values["name"], config.profile, __version__, values, tuple(services),
                          secrets, routes, settings)
    model.waves()  # refuse a cycle now rather than at apply time
    return model


def _target_settings(values: dict[str, Any]) -> dict[str, Any]:
    target = values["target"]
    return {
        "namespace": target["kubernetes"]["namespace"] or values["name"],
        "group": target["marathon"]["group"] or f"/{values['name']}",
        "state_dir": f"{target['compose']['state_dir']}/{values['name']}",
    }


def _host_namer(profile: Profile, platform: str, settings: dict[str, Any]) -> Any:
    naming = profile.settings["naming"]
    group = settings["group"].strip("/").split("/")
    marathon_suffix = "-".join(reversed(group))  # Mesos-DNS names /a/b/app as app-b-a

    def host(service: str, index: int | str | None = None) -> str:
        pattern = naming["service"] if index is None else naming["replica"]
        return pattern.format(service=service, index=index, platform=platform,
                              namespace=settings["namespace"], group=marathon_suffix)

    return host


def _peers_namer(profile: Profile, host: Any) -> Any:
    """The DNS name that resolves to every replica of a service (for Prometheus)."""
    patterns = profile.settings["naming"]["peers"]

    def peers(service: Service) -> str:
        return patterns[service.kind].format(service=host(service.name))

    return peers


def _evaluate(module: Module, name: str, spec: Any, context: dict[str, Any],
              part: tuple[str, ...] = ()) -> Any:
    """`spec` (or the `part` of it named) evaluated, and checked against the service schema."""
    where = f"{module.source.file}:{module.source.line_of(('services', name, *part))}"
    try:
        evaluated = evaluate_values(spec, context)
    except TemplateFailure as exc:
        raise CatalogError(f"{where}: services.{name}: {exc}") from None
    errors = sorted(_service_validator(part).iter_errors(evaluated),
                    key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        path = ("services", name, *part, *error.absolute_path)
        raise CatalogError(f"{module.source.file}:{module.source.line_of(path)}: "
                           f"{format_path(path)}: {error.message}")
    return evaluated


def _service(module: Module, name: str, spec: dict[str, Any], values: dict[str, Any],
             stores: dict[str, Any]) -> Service:
    spec = apply_defaults(spec, _service_schema())
    # Every optional key present (as None) so that profile templates need no guards.
    for probe in ("health", "ready"):
        if probe in spec:
            spec[probe] = {"http": None, "tcp": False, "exec": None, "port": None,
                           **apply_defaults(spec[probe], _service_schema()["$defs"]["probe"])}
    spec["ports"] = [{"route": None, **port} for port in spec.get("ports", [])]
    external = {s for s in STORES if not stores[s]["internal"]}
    return Service(
        name=name,
        module=module.name,
        kind=spec["kind"],
        image=spec["image"],
        image_ref=image_reference(spec["image"], values, service=name),
        replicas=spec["replicas"],
        command=spec.get("command"),
        env={k: _env_text(v) for k, v in spec.get("env", {}).items()},
        secrets=spec.get("secrets", []),
        ports=spec.get("ports", []),
        health=spec.get("health"),
        ready=spec.get("ready"),
        metrics=spec.get("metrics"),
        volumes=spec.get("volumes", []),
        host_folders=spec.get("host_folders", []),
        files=spec.get("files", []),
        sidecars=_sidecars(name, spec, values),
        depends_on=[d for d in spec.get("depends_on", []) if d not in external],
        resources=spec["resources"],
        update=spec["update"],
        orchestrator_access=spec["orchestrator_access"],
        role=spec.get("role"),
        backup=spec.get("backup"),
    )


def image_reference(image: str, values: dict[str, Any], service: str | None = None) -> str:
    """The reference a target pulls a logical image by: the bundle's tag, unless
    `images.services` pins `service` to another tag, a digest or a whole reference."""
    registry = values["images"]["registry"]
    repository = f"{registry + '/' if registry else ''}heliostat/{image}"
    override = values["images"].get("services", {}).get(service) if service else None
    if not override:
        return f"{repository}:{__version__}"
    if _DIGEST.fullmatch(override):
        return f"{repository}@{override}"
    if _TAG.fullmatch(override):
        return f"{repository}:{override}"
    return override


def pin_images(model: PlatformModel, digests: Mapping[str, str]) -> PlatformModel:
    """The model with each image reference that `digests` names pinned to its digest
    (`registry/heliostat/postgres:0.1.0@sha256:…`): the tag says which image it is, the
    digest is what the target runs, whatever the tag points at later."""
    def pinned(reference: str) -> str:
        return f"{reference}@{digests[reference]}" if reference in digests else reference

    if not digests:
        return model
    services = tuple(replace(s, image_ref=pinned(s.image_ref), sidecars=[
        {**sc, "image_ref": pinned(sc["image_ref"])} for sc in s.sidecars])
        for s in model.services)
    return replace(model, services=services)


# A bare tag or digest in `images.services` names the service's own image; anything else
# (a `/`, `:` or `@` in it) is a whole reference, used as it is.
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_image_overrides(config: PlatformConfig, services: list[Service]) -> None:
    """An image pinned for a service this platform does not run is a typo: say so."""
    names = {s.name for s in services}
    for service in config.values["images"].get("services", {}):
        if service not in names:
            path = ("images", "services", service)
            raise InvalidInput.single(
                config.document.file, f"no service {service!r} runs on this platform "
                f"(it runs {', '.join(sorted(names))})", line=config.document.line_of(path),
                path=format_path(path))


def _check_dependencies(services: list[Service]) -> None:
    names = {s.name for s in services}
    for service in services:
        missing = [d for d in service.depends_on if d not in names]
        if missing:
            raise CatalogError(f"service {service.name} depends on {missing}, "
                               "which this configuration does not run")


def _with_files(service: Service, module: Module, context: dict[str, Any]) -> Service:
    if not service.files:
        return service
    env = _files_environment(module.directory)
    files = []
    for index, entry in enumerate(service.files):
        try:
            content = render_file(env, entry["template"], {
                **context, "config": context["modules"][module.name], "service": service})
        except TemplateFailure as exc:
            raise CatalogError(f"bundles/{module.name}/{exc}") from None
        basename = Path(entry["path"]).name
        same_name = [e for e in service.files if Path(e["path"]).name == basename]
        key = basename if len(same_name) == 1 else f"{index}-{basename}"
        files.append({"path": entry["path"], "key": key, "content": content})
    return Service(**{**service.__dict__, "files": files})


@cache
def _files_environment(directory: Path) -> Any:
    return make_environment(directory)


def _sidecars(service: str, spec: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    sidecars = []
    for sc in spec.get("sidecars", []):
        sc = dict(sc)
        if not sc.pop("when", True):
            continue
        foreign = [s for s in sc.get("secrets", []) if s not in spec.get("secrets", [])]
        if foreign:
            raise CatalogError(f"sidecar {sc['name']} of {service} mounts secrets its service "
                               f"does not: {foreign}")
        if sc.get("metrics"):
            sc["metrics"] = {"path": "/metrics", **sc["metrics"]}
        sidecars.append({"env": {}, "volumes": [], "secrets": [], "metrics": None,
                         "resources": spec["resources"], **sc,
                         "image_ref": image_reference(sc["image"], values)})
    return sidecars


def scrape_jobs(services: Iterable[Service]) -> list[dict[str, Any]]:
    """What Prometheus scrapes: each service's metrics and those of each sidecar that
    serves its own (job `<service>-<sidecar>`), with the replicas that answer."""
    jobs = []
    for service in services:
        served = [(service.name, service.metrics)] + [
            (f"{service.name}-{sc['name']}", sc["metrics"]) for sc in service.sidecars]
        jobs += [{"job": job, "service": service, "module": service.module,
                  "port": metrics["port"], "path": metrics["path"],
                  "replicas": service.replicas}
                 for job, metrics in served if metrics and service.kind != "job"]
    return jobs


def _secrets(modules: list[Module], stores: dict[str, Any],
             services: list[Service]) -> dict[str, dict[str, Any]]:
    declared = store_secrets(stores)
    for module in modules:
        declared.update(module.secrets)
    for service in services:
        unknown = [s for s in service.secrets if s not in declared]
        if unknown:
            raise CatalogError(f"service {service.name} mounts secrets nobody declares: {unknown}")
    used = {s for service in services for s in service.secrets}
    return {name: spec for name, spec in sorted(declared.items()) if name in used}
