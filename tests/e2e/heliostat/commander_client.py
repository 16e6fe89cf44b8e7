"""Commander's API as the tests reach it: at its address on the platform's network (it is
not published on the host), with its token; and the platform's history."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import docker

from tests.infra.compose_platforms import PlatformUnderTest, container_of, wait_for

FINISHED = ("deployed", "unchanged", "rolled-back", "failed", "superseded")


def address_of(engine: docker.DockerClient, platform: PlatformUnderTest, service: str) -> str:
    container = container_of(engine, platform, service)
    return container.attrs["NetworkSettings"]["Networks"][
        f"heliostat-{platform.name}"]["IPAddress"]


def brief(operation: dict[str, Any]) -> tuple[str, str, list[str]]:
    """What an assertion shows of an operation that ended otherwise than expected."""
    return operation["state"], operation["reason"], operation["events"]


@dataclass
class Commander:
    platform: PlatformUnderTest
    engine: docker.DockerClient
    token: str
    webhook_secret: str
    url: str = ""

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Its address: a restarted or replaced container may have another."""
        self.url = f"http://{address_of(self.engine, self.platform, 'commander')}:8000"

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None
             ) -> tuple[int, Any]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {self.token if token is None else token}"}
               if token != "" else {}),
            **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def operation(self, operation: str) -> dict[str, Any]:
        status, found = self.call("GET", f"/api/v1/operations/{operation}")
        assert status == 200, found
        return found

    def wait(self, operation: str, timeout: float = 300) -> dict[str, Any]:
        return wait_for(f"operation {operation} to finish",
                        lambda: (found := self.operation(operation))["state"] in FINISHED
                        and found, timeout, every=1)

    def operations(self) -> list[dict[str, Any]]:
        return self.call("GET", "/api/v1/operations")[1]["operations"]

    def audit(self) -> list[dict[str, Any]]:
        status, found = self.call("GET", "/api/v1/audit")
        assert status == 200, found
        return found["entries"]

    def notify(self, *events: dict[str, Any], secret: str | None = None) -> tuple[int, Any]:
        return self.call("POST", "/webhooks/registry", {"events": list(events)}, token="",
                         headers={"X-Heliostat-Webhook-Secret": self.webhook_secret
                                  if secret is None else secret})


def history(platform: PlatformUnderTest) -> list[dict[str, Any]]:
    shown = platform.run("history", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)
