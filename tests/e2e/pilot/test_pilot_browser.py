"""Pilot in a real browser (the system's headless Chromium, driven by Playwright) on a
platform installed by heliostat with clickstream (its own Postgres, Redis and Kafka),
monitoring, Pilot and Commander, reached through the gateway: sign in, the overview, an
app made on the Apps page with its write key shown once, events sent to the Event API
with curl and seen arriving in the live debugger, a webhook destination whose delivered
count goes up, the charts Prometheus feeds drawing that destination by name, and a
rollback to revision 1 from the Releases page followed to its end.

Each page is kept as a screenshot at 1280 and 800 px wide in build/test-artifacts/pilot/
(with the requests and console messages the browser saw); the console shows no error,
no page is wider than the window, no answer is a 5xx, and no request leaves the
platform's origin.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from tests.infra.compose_platforms import (
    REPOSITORY,
    PlatformUnderTest,
    remove_platform,
    unique_platform_name,
)
from tests.infra.http_sink import HttpSink

ARTIFACTS = REPOSITORY / "build" / "test-artifacts" / "pilot"
WIDTHS = (1280, 800)
HEIGHT = 900
MODULE_IMAGES = ("heliostat/clickstream:0.1.0", "heliostat/redis:0.1.0",
                 "heliostat/kafka:0.1.0", "heliostat/prometheus:0.1.0",
                 "heliostat/alertmanager:0.1.0")
FINISHED = ("deployed", "unchanged", "rolled-back", "failed", "superseded")


def platform_config(platform: PlatformUnderTest, event_apis: int) -> None:
    platform.config.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {platform.name}
        profile: compose
        gateway: {{http_port: {platform.port}}}
        modules:
          clickstream:
            event_api: {{replicas: {event_apis}}}
            topic_partitions: 2
            workers: {{warehouse: {{enabled: false}}, redis: {{enabled: false}}}}
          pilot: {{enabled: true}}
          commander: {{enabled: true, auto_update: false}}
          monitoring:
            prometheus: {{replicas: 1, scrape_interval_seconds: 5}}
          airflow: {{enabled: false}}
        """))


@pytest.fixture(scope="module")
def platform(compose_engine: docker.DockerClient,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformUnderTest]:
    missing = []
    for image in MODULE_IMAGES:
        try:
            compose_engine.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    if missing:
        pytest.fail(f"images {', '.join(missing)} are missing: run `make images`",
                    pytrace=False)
    under_test = PlatformUnderTest(unique_platform_name(), tmp_path_factory.mktemp("pilot"))
    platform_config(under_test, event_apis=1)
    try:
        started = time.monotonic()
        installed = under_test.run("install", timeout=900)
        assert installed.returncode == 0, installed.stderr[-3000:]
        print(f"setup: platform with clickstream, Pilot and Commander installed in "
              f"{time.monotonic() - started:.0f}s")
        yield under_test
    finally:
        remove_platform(compose_engine, under_test.name)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.iterdir():
        if old.is_file():
            old.unlink()
    return ARTIFACTS


@dataclass
class Seen:
    """What the browser did and was told, for the whole visit."""
    origin: str
    requests: list[str] = field(default_factory=list)  # "METHOD URL"
    console: list[str] = field(default_factory=list)  # "type: text (url)"
    errors: list[str] = field(default_factory=list)  # console errors, page errors
    server_errors: list[str] = field(default_factory=list)  # 5xx answers
    too_wide: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("request", lambda r: self.requests.append(f"{r.method} {r.url}"))
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("response", lambda r: self.server_errors.append(
            f"{r.status} {r.request.method} {r.url}") if r.status >= 500 else None)

    def _console(self, message: Any) -> None:
        if message.type not in ("error", "warning"):
            return
        where = message.location.get("url", "") if message.location else ""
        line = f"{message.type}: {message.text} ({where})"
        self.console.append(line)
        if message.type == "error":
            self.errors.append(line)

    def outside(self) -> list[str]:
        return [r for r in self.requests
                if not r.split(" ", 1)[1].startswith(self.origin + "/")]

    def shoot(self, page: Any, name: str, folder: Path) -> None:
        """The page as it is now, at each width; it must fit the window's width."""
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": HEIGHT})
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            if overflow > 0:
                self.too_wide.append(f"{name} at {width}px: {overflow}px wider")
            path = folder / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            self.screenshots.append(path.name)
        page.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})

    def write(self, folder: Path) -> None:
        (folder / "requests.txt").write_text("".join(f"{r}\n" for r in self.requests))
        (folder / "console.txt").write_text("".join(f"{c}\n" for c in self.console))


def curl_events(origin: str, write_key: str, user: str, count: int) -> list[str]:
    """`count` track calls to the Event API, with curl as a user would; their messageIds."""
    ids = []
    for n in range(count):
        message_id = str(uuid.uuid4())
        body = json.dumps({"userId": user, "event": "Order Completed", "messageId": message_id,
                           "properties": {"order": n, "total": 10.5 + n}})
        sent = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
             "-u", f"{write_key}:", "-H", "Content-Type: application/json",
             "--data", body, f"{origin}/v1/track"],
            capture_output=True, text=True, timeout=30)
        assert (sent.returncode, sent.stdout) == (0, "200"), (sent.stdout, sent.stderr)
        ids.append(message_id)
    return ids


def secret(platform: PlatformUnderTest, name: str) -> str:
    shown = platform.run("status", "--show-secret", name)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.strip()


def sign_in(page: Any, password: str) -> None:
    page.fill("#f-username", "admin")
    page.fill("#f-password", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    print(f"step: {name} in {time.monotonic() - started:.1f}s")


def test_a_user_tracks_an_app_and_rolls_back_in_the_browser(
        platform: PlatformUnderTest, compose_engine: docker.DockerClient, browser: Any,
        artifacts: Path) -> None:
    origin = f"http://127.0.0.1:{platform.port}"
    network = compose_engine.networks.get(f"heliostat-{platform.name}")
    sink = HttpSink(host=network.attrs["IPAM"]["Config"][0]["Gateway"])
    seen = Seen(origin)
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": HEIGHT})
    # Nothing leaves this machine, whatever a page asks for (it is still recorded).
    context.route("**/*", lambda route: route.continue_()
                  if route.request.url.startswith(origin + "/") else route.abort())
    context.set_default_timeout(30_000)
    page = context.new_page()
    seen.watch(page)
    password = secret(platform, "pilot-admin-password")
    try:
        with step("sign in"):
            page.goto(origin + "/")
            assert page.url == f"{origin}/login?next=%2F"
            seen.shoot(page, "login", artifacts)
            sign_in(page, password)
            assert page.url == origin + "/"

        with step("overview"):
            assert page.get_by_role("heading", level=1).inner_text().startswith("Overview")
            for service in ("gateway", "event-api", "pilot", "commander"):
                assert page.locator("th[scope=row]", has_text=re.compile(
                    f"^{service}$")).count() == 1, service
            seen.shoot(page, "overview", artifacts)

        with step("create an app"):
            page.get_by_role("link", name="Apps", exact=True).click()
            page.wait_for_url(origin + "/apps")
            assert page.get_by_text("No apps yet.").is_visible()
            seen.shoot(page, "apps", artifacts)
            page.fill("#f-name", "web shop")
            page.get_by_role("button", name="Create app").click()
            page.get_by_role("heading", name="App “web shop” created").wait_for()
            write_key = page.input_value("#write-key")
            assert len(write_key) >= 20, write_key
            seen.shoot(page, "app-created", artifacts)
            page.get_by_role("link", name=re.compile("^To the app.s page$")).click()
            page.wait_for_url(re.compile(re.escape(origin) + r"/apps/\d+$"))
            app_path = page.url.removeprefix(origin)
            # Shown once: the app's page has only the key's prefix.
            assert write_key not in page.content()
            assert page.get_by_text(write_key[:6] + "…").count() >= 1
            seen.shoot(page, "app", artifacts)

        with step("events in the live debugger"):
            page.get_by_role("link", name="Live events").click()
            page.wait_for_url(origin + app_path + "/events")
            page.locator("#live-status", has_text="Live:").wait_for()
            assert page.locator("#live-empty").is_visible()
            ids = curl_events(origin, write_key, "u-browser", 3)
            page.wait_for_function(
                """ids => ids.every(id => Array.from(document.querySelectorAll(
                     '#live-events pre')).some(p => p.textContent.includes(id)))""",
                arg=ids, timeout=60_000)
            assert page.locator("#live-events > li").count() == 3
            assert page.locator("#live-empty").is_hidden()
            first = page.locator("#live-events > li").filter(
                has=page.locator("pre", has_text=ids[0]))
            assert first.locator("summary").inner_text().startswith(
                "track · Order Completed · u-browser")
            json_view = first.locator("pre")
            assert json_view.is_hidden()
            first.locator("summary").click()
            assert json_view.is_visible()
            shown = json.loads(json_view.inner_text())
            assert shown["messageId"] == ids[0] and shown["properties"] == {
                "order": 0, "total": 10.5}, shown
            seen.shoot(page, "events", artifacts)

        with step("a webhook destination, deliveries counted"):
            page.goto(origin + app_path)
            page.locator("#destinations").get_by_role("link", name="Webhook").click()
            page.wait_for_url(origin + app_path + "/destinations/new?kind=webhook")
            seen.shoot(page, "destination-new", artifacts)
            page.fill("#f-name", "order hook")
            page.fill("#f-url", sink.url)
            assert page.is_checked("input[name=enabled]")
            page.get_by_role("button", name="Add destination").click()
            page.wait_for_url(re.compile(re.escape(origin + app_path)
                                         + r"/destinations/\d+\?notice=created$"))
            destination_url = page.url.split("?", 1)[0]
            delivered = page.locator("section.stat", has=page.get_by_role(
                "heading", name="Delivered")).locator(".big")
            assert delivered.inner_text() == "0"
            more = curl_events(origin, write_key, "u-hook", 3)
            sink.wait_until(lambda: set(more) <= {e.get("messageId") for e in sink.events()},
                            timeout=90)
            # The page shows the workers' counts, added up every few seconds: reload until
            # it shows the three deliveries (bounded).
            deadline = time.monotonic() + 90
            page.goto(destination_url)
            while int(delivered.inner_text()) < 3 and time.monotonic() < deadline:
                page.wait_for_timeout(2000)
                page.goto(destination_url)
            assert int(delivered.inner_text()) >= 3, delivered.inner_text()
            assert page.locator("#dead-letters .big").inner_text() == "0"
            seen.shoot(page, "destination", artifacts)
            page.goto(origin + app_path)
            row = page.locator("#destinations tbody tr", has_text="order hook")
            assert int(row.locator("td.num").first.inner_text()) >= 3

        with step("charts"):
            page.get_by_role("link", name="Charts", exact=True).click()
            page.wait_for_url(origin + "/charts")
            page.get_by_role("link", name="15 minutes").click()
            page.wait_for_url(origin + "/charts?window=15m")
            # Prometheus scrapes every 5 s and the page refreshes itself: the destination
            # appears, by its name and app, once a scrape has seen its worker's counter.
            page.locator("#chart-delivered table.latest tbody th",
                         has_text="order hook (web shop)").wait_for(timeout=90_000)
            received = page.locator("#chart-received")
            assert received.locator(".uplot canvas").count() == 1
            assert received.locator("table.latest tbody th").inner_text() == "total"
            assert page.locator("#chart-rejected p.empty").inner_text() == (
                "No request was rejected in this window.")
            seen.shoot(page, "charts", artifacts)

        with step("a second revision (heliostat upgrade)"):
            platform_config(platform, event_apis=2)
            upgraded = platform.run("upgrade")
            assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr[-3000:]

        with step("roll back to revision 1"):
            page.goto(origin + "/releases")
            if page.url.startswith(origin + "/login"):
                sign_in(page, password)
            page.wait_for_url(origin + "/releases")
            assert page.locator("tr.current th").inner_text() == "2 (now)"
            seen.shoot(page, "releases", artifacts)
            page.get_by_role("link", name="Roll back to 1").click()
            page.wait_for_url(origin + "/releases/1/rollback")
            assert "modules.clickstream.event_api.replicas" in page.locator("main").inner_text()
            seen.shoot(page, "rollback", artifacts)
            page.get_by_role("button", name="Roll back to revision 1").click()
            page.wait_for_url(re.compile(re.escape(origin) + r"/operations/[\w-]+$"))
            seen.shoot(page, "operation-running", artifacts)
            # The page follows the operation and reloads itself when it has finished.
            page.locator('#operation[data-finished="yes"]').wait_for(timeout=300_000)
            assert page.locator("#op-state").inner_text() == "deployed"
            assert page.locator("#op-events li").count() >= 1
            seen.shoot(page, "operation", artifacts)
            history = json.loads(platform.run("history", "--output", "json").stdout)
            assert history[-1]["description"] == "commander: rollback to 1", history[-1]
            page.get_by_role("link", name="Back to the releases").click()
            page.wait_for_url(origin + "/releases")
            assert page.locator("tr.current th").inner_text() == "3 (now)"
    except Exception:
        # Where it stopped, for the failure's report.
        page.screenshot(path=str(artifacts / "failed-at.png"), full_page=True)
        (artifacts / "failed-at.txt").write_text(f"{page.url}\n\n{page.inner_text('body')}")
        raise
    finally:
        seen.write(artifacts)
        context.close()
        sink.stop()

    assert seen.errors == [], seen.errors
    assert seen.outside() == [], seen.outside()
    assert seen.server_errors == [], seen.server_errors
    assert seen.too_wide == [], seen.too_wide
    assert len(seen.screenshots) == 2 * 13, seen.screenshots
