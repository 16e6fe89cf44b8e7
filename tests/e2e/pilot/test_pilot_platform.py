"""Pilot on the real engine, in a platform installed by heliostat with Pilot, Commander
and the platform's own Postgres: signed in through the gateway (plain HTTP, as on the
demo), the overview and releases from the real Commander, an API token, a rollback
followed to its end, and a restart that keeps the account."""

from __future__ import annotations

import http.cookiejar
import json
import re
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.infra.compose_platforms import PlatformUnderTest

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def write_config(platform: PlatformUnderTest) -> Path:
    path = platform.directory / "platform.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {platform.name}
        profile: compose
        gateway: {{http_port: {platform.port}}}
        modules:
          clickstream: {{enabled: false}}
          monitoring: {{enabled: false}}
          commander: {{auto_update: false}}
          pilot: {{session_hours: 2}}
        stores:
          postgres: {{mode: internal}}
          redis: {{mode: external, host: redis.invalid}}
          kafka: {{mode: external, bootstrap: ["kafka.invalid:9092"]}}
        """))
    return path


class Browser:
    """A cookie-keeping HTTP client that does not follow redirects (to see them)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect())

    def call(self, method: str, path: str, form: dict[str, str] | None = None,
             body: Any = None, headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, str], str]:
        data, sent = None, dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers=sent)
        try:
            with self.opener.open(request, timeout=60) as answer:
                return answer.status, dict(answer.headers), answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    def csrf(self, path: str) -> str:
        status, _, page = self.call("GET", path)
        assert status == 200, (path, status, page[:300])
        found = CSRF.search(page)
        assert found, page[:500]
        return found[1]


def secret(platform: PlatformUnderTest, name: str) -> str:
    shown = platform.run("status", "--show-secret", name)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


@pytest.fixture
def installed(test_platform: PlatformUnderTest) -> PlatformUnderTest:
    platform = test_platform
    platform.config = write_config(platform)
    result = platform.run("install")
    assert result.returncode == 0, result.stdout + result.stderr
    return platform


def test_sign_in_through_the_gateway_and_roll_back(installed: PlatformUnderTest,
                                                   compose_engine: docker.DockerClient):
    platform = installed
    browser = Browser(f"http://127.0.0.1:{platform.port}")
    status, _, body = browser.call("GET", "/health")
    assert status == 200 and json.loads(body)["checks"] == {"postgres": "ok",
                                                             "commander": "ok"}

    # Not signed in: pages send to the login form, the API answers 401.
    status, headers, _ = browser.call("GET", "/releases")
    assert (status, headers["Location"]) == (303, "/login?next=%2Freleases")
    assert browser.call("GET", "/api/v1/status")[0] == 401

    # The admin's password is the platform's generated secret.
    password = secret(platform, "pilot-admin-password")
    token = browser.csrf("/login")
    assert browser.call("POST", "/login", form={"username": "admin", "password": "wrong",
                                                "csrf_token": token})[0] == 401
    token = browser.csrf("/login")
    status, headers, _ = browser.call("POST", "/login", form={
        "username": "admin", "password": password, "csrf_token": token, "next": "/"})
    assert (status, headers["Location"]) == (303, "/"), headers
    cookie = next(c for c in browser.cookies if c.name == "pilot_session")
    assert not cookie.secure  # plain http through the gateway: a Secure cookie would be lost
    assert cookie.has_nonstandard_attr("HttpOnly")

    # The overview, from the real Commander.
    status, _, page = browser.call("GET", "/")
    assert status == 200, page[:500]
    for service in ("gateway", "postgres", "commander", "pilot"):
        assert f'<th scope="row">{service}</th>' in page, service
    assert "heliostat/pilot:0.1.0" in page
    assert "1 / 1" in page

    # An API token, then the JSON API with it.
    session_csrf = browser.csrf("/tokens")
    status, _, made = browser.call("POST", "/api/v1/tokens", body={"name": "e2e",
                                                                    "role": "admin"},
                                   headers={"X-CSRF-Token": session_csrf})
    assert status == 201, made
    api_token = json.loads(made)["token"]
    script = Browser(browser.base)
    bearer = {"Authorization": f"Bearer {api_token}"}
    status, _, body = script.call("GET", "/api/v1/status", headers=bearer)
    rows = {row["service"]: row for row in json.loads(body)["services"]}
    assert rows["pilot"]["module"] == "pilot" and rows["pilot"]["health"] == "healthy"

    # A second revision (an upgrade with a changed setting), then roll back to the first
    # from Pilot, following the operation to its end.
    platform.config.write_text(platform.config.read_text().replace("session_hours: 2",
                                                                   "session_hours: 3"))
    upgraded = platform.run("upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    browser = Browser(browser.base)  # the upgrade replaced Pilot; sign in again
    token = browser.csrf("/login")
    assert browser.call("POST", "/login", form={"username": "admin", "password": password,
                                                "csrf_token": token})[0] == 303
    status, _, page = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        browser.call("GET", "/releases")), 60, "the releases page")
    assert 'href="/releases/1/rollback"' in page
    status, _, page = browser.call("GET", "/releases/diff?from=1&to=2")
    assert "modules.pilot.session_hours" in page
    status, _, page = browser.call("GET", "/releases/1/rollback")
    assert status == 200 and "Roll back to revision 1" in page
    status, headers, _ = browser.call("POST", "/releases/1/rollback",
                                      form={"csrf_token": CSRF.search(page)[1]})
    assert status == 303
    operation = headers["Location"].removeprefix("/operations/")
    done = wait_for(lambda: (lambda r: r if r[0] == 200 and json.loads(r[2])["state"] in (
        "deployed", "rolled-back", "failed") else None)(
        script.call("GET", f"/api/v1/operations/{operation}", headers=bearer)),
        300, f"operation {operation}")
    assert json.loads(done[2])["state"] == "deployed", done[2]
    history = json.loads(platform.run("history", "--output", "json").stdout)
    assert history[-1]["description"] == "commander: rollback to 1"

    # Pilot was replaced by the rollback; its account and the token live in Postgres.
    status, _, body = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        script.call("GET", "/api/v1/me", headers=bearer)), 120, "Pilot back after rollback")
    assert json.loads(body)["username"] == "admin"
    container = compose_engine.containers.get(f"{platform.name}-pilot-1")
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert env["PILOT_SESSION_HOURS"] == "2"
    logs = container.logs().decode().splitlines()
    assert logs and all(line.startswith("{") for line in logs), logs[:5]
