"""Where people reach a platform once it is deployed: the gateway's URL of each routed
service, and where the credentials to log in with are kept (never their values).

What is routed comes from the services' public ports (`route:` in module.yaml); which
secrets are credentials, from `login: true` on a module's secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heliostat.model import PlatformModel


@dataclass(frozen=True)
class Access:
    urls: tuple[tuple[str, str], ...]  # (service, URL), in route order
    logins: tuple[tuple[str, str, Path], ...]  # (secret, what it is, file on the target)

    def lines(self) -> list[str]:
        width = max((len(service) for service, _ in self.urls), default=0)
        text = [f"  {service.ljust(width)}  {url}" for service, url in self.urls]
        for _, description, path in self.logins:
            text.append(f"  {description.rstrip('.')}: in {path} (root only: "
                        f"`sudo cat {path}`)")
        return text

    def to_json(self) -> dict[str, Any]:
        return {"urls": dict(self.urls),
                "logins": {name: {"description": description, "file": str(path)}
                           for name, description, path in self.logins}}


def platform_access(model: PlatformModel, secrets_dir: Path) -> Access:
    """The URLs and login secrets of `model`, whose secrets are files in `secrets_dir`."""
    gateway = model.values["gateway"]
    port = gateway.get("http_port")
    # The Kubernetes target routes through its Ingress on the standard port.
    base = (f"http://{gateway['hostname']}" if model.profile == "kubernetes" or port in (None, 80)
            else f"http://{gateway['hostname']}:{port}")
    routes = sorted(model.routes, key=lambda r: (r["route"] != "/", r["route"]))
    urls = tuple((r["service"], base + r["route"]) for r in routes)
    logins = tuple((name, spec.get("description", name), secrets_dir / name)
                   for name, spec in model.secrets.items() if spec.get("login"))
    return Access(urls, logins)
