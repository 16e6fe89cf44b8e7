"""The tracker from the platform alone: a real platform (clickstream with its own
Postgres, Redis and Kafka; no Pilot, Commander or monitoring) on the real engine, and a
shop's page on another origin with the snippet Pilot shows for an app, pointed at the
platform's gateway. Headless Chromium loads analytics.js from the gateway and its settings from
/v1/projects/{writeKey}/settings — none given in the page —, every request it makes goes
to the platform or the page's own server, and each call arrives once at a webhook, in
standard and in batching mode. An unknown write key: the tracker does not start and
sends no event."""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import docker
import pytest

from pilot.clickstream_apps import EventApi
from tests.infra.compose_platforms import PlatformUnderTest, remove_platform, unique_platform_name
from tests.infra.http_sink import HttpSink

BATCHING = ('{integrations: {"Segment.io": {deliveryStrategy: {strategy: "batching", '
            'config: {size: 5, timeout: 300}}}}}')
# After the loader took over from the snippet's queue: the other calls, with their events.
CALLS = """async (user) => {
  await new Promise((resolve) => window.analytics.ready(resolve))
  const contexts = await Promise.all([
    analytics.identify(user, {email: 'browser@example.com', plan: 'pro'}),
    analytics.track('Clicked', {button: 'buy'}),
    analytics.group('org-1', {name: 'Org'}),
    analytics.alias(user + '-new', user),
  ])
  return contexts.map((ctx) => ({
    messageId: ctx.event.messageId, type: ctx.event.type,
    failed: ctx.failedDelivery() ? String(ctx.failedDelivery().reason) : null}))
}"""


def platform_config(platform: PlatformUnderTest) -> None:
    platform.config.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {platform.name}
        profile: compose
        gateway: {{http_port: {platform.port}}}
        modules:
          clickstream:
            event_api: {{replicas: 1}}
            topic_partitions: 2
            workers: {{warehouse: {{enabled: false}}, redis: {{enabled: false}}}}
          pilot: {{enabled: false}}
          commander: {{enabled: false}}
          monitoring: {{enabled: false}}
        """))


@pytest.fixture(scope="module")
def platform(compose_engine: docker.DockerClient,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformUnderTest]:
    under_test = PlatformUnderTest(unique_platform_name(), tmp_path_factory.mktemp("tracker"))
    platform_config(under_test)
    try:
        started = time.monotonic()
        installed = under_test.run("install", timeout=900)
        assert installed.returncode == 0, installed.stderr[-3000:]
        print(f"setup: clickstream platform installed in {time.monotonic() - started:.0f}s")
        yield under_test
    finally:
        remove_platform(compose_engine, under_test.name)


def clickstream_admin(client: docker.DockerClient, platform: PlatformUnderTest,
                      *args: str) -> dict:
    container = client.containers.get(f"{platform.name}-event-api-1")
    result = container.exec_run(["python3", "-m", "clickstream", "admin", *args,
                                 "--output", "json"])
    assert result.exit_code == 0, result.output.decode()
    return json.loads(result.output.decode().strip().splitlines()[-1])


class Shop:
    """The shop's web server, on its own loopback port: one page, the snippet in it."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = shop.pages.get(urlsplit(self.path).path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def page(self, platform_origin: str, write_key: str, load_options: str = "") -> str:
        path = f"/{uuid.uuid4().hex[:8]}"
        # The snippet Pilot shows on the app's page, as a page pastes it.
        scheme, _, host = platform_origin.partition("://")
        snippet = EventApi(scheme, host).script_snippet(write_key, load_options)
        self.pages[path] = (f'<!doctype html><html><head><meta charset="utf-8">'
                            f'<title>Shop</title><link rel="icon" href="data:,">{snippet}'
                            f"</head><body><h1>Shop</h1></body></html>").encode()
        return self.origin + path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Visit:
    url: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # method, URL
    answers: dict[str, tuple[int, dict[str, str]]] = field(default_factory=dict)  # by path
    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def paths(self, method: str, origin: str) -> list[str]:
        return sorted(urlsplit(u).path for m, u in self.requests
                      if m == method and u.startswith(origin + "/"))


def visit(browser: Any, url: str, *, user: str | None, wait_for_posts: int) -> Visit:
    """Open the page; with `user`, make the calls once the tracker is ready, then wait for
    `wait_for_posts` answers to posts of events."""
    seen = Visit(url)
    context = browser.new_context()
    # Nothing leaves this machine, whatever the page asks for (it is still recorded).
    context.route("**/*", lambda route: route.continue_() if urlsplit(
        route.request.url).hostname == "127.0.0.1" else route.abort())
    try:
        page = context.new_page()
        page.on("console", lambda m: seen.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: seen.console.append(f"pageerror: {e}"))
        page.on("request", lambda r: seen.requests.append((r.method, r.url)))
        page.on("requestfailed", lambda r: seen.failed.append(f"{r.method} {r.url}: {r.failure}"))
        page.on("response", lambda r: seen.answers.setdefault(
            f"{r.request.method} {urlsplit(r.url).path}", (r.status, r.headers)))
        page.goto(url)
        if user is not None:
            seen.calls = page.evaluate(CALLS, user)
        else:
            page.wait_for_timeout(2000)  # the loader's settings request and what follows
        deadline = time.monotonic() + 15
        while (sum(1 for k in seen.answers if k.startswith("POST ")) < wait_for_posts
               and time.monotonic() < deadline):
            page.wait_for_timeout(50)
    finally:
        context.close()
    return seen


def test_a_page_loads_and_configures_the_tracker_from_the_platform_alone(
        platform: PlatformUnderTest, compose_engine: docker.DockerClient,
        browser: Any) -> None:
    network = compose_engine.networks.get(f"heliostat-{platform.name}")
    sink = HttpSink(host=network.attrs["IPAM"]["Config"][0]["Gateway"])
    shop = Shop()
    origin = f"http://127.0.0.1:{platform.port}"
    try:
        app = clickstream_admin(compose_engine, platform, "app", "create", "shop")
        key = app["write_key"]
        clickstream_admin(compose_engine, platform, "destination", "create", str(app["id"]),
                          "--name", "hook", "--kind", "webhook", "--setting", f"url={sink.url}")
        visits = {"standard": visit(browser, shop.page(origin, key), user="u-standard",
                                    wait_for_posts=5),
                  "batching": visit(browser, shop.page(origin, key, BATCHING),
                                    user="u-batching", wait_for_posts=1)}
        for mode, seen in visits.items():
            outside = [u for _, u in seen.requests
                       if not u.startswith((origin + "/", shop.origin + "/"))]
            assert outside == [], (mode, outside)
            assert seen.failed == [] and seen.console == [], (mode, seen)
            assert [c["failed"] for c in seen.calls] == [None] * 4, (mode, seen.calls)
            # From the platform: the loader, the key's settings (none inline), chunks.
            fetched = seen.paths("GET", origin)
            assert {f"/analytics.js/v1/{key}/analytics.min.js",
                    f"/v1/projects/{key}/settings"} <= set(fetched), fetched
            assert all(p.startswith(("/analytics.js/", "/v1/projects/", "/analytics-next/"))
                       for p in fetched), fetched
            status, headers = seen.answers[f"GET /analytics.js/v1/{key}/analytics.min.js"]
            assert status == 200 and headers["content-type"].startswith("text/javascript")
            assert "max-age=" in headers["cache-control"]
            status, headers = seen.answers[f"GET /v1/projects/{key}/settings"]
            assert status == 200 and headers["access-control-allow-origin"] == shop.origin
        assert visits["standard"].paths("POST", origin) == ["/v1/a", "/v1/g", "/v1/i", "/v1/p",
                                                             "/v1/t"]
        assert visits["batching"].paths("POST", origin) == ["/v1/b"]
        assert {s for v in visits.values() for k, (s, _) in v.answers.items()
                if k.startswith("POST ")} == {200}

        sent = {c["messageId"]: mode for mode, v in visits.items() for c in v.calls}
        webhook_wanted = 2 * 5  # the snippet's page() and the four calls, per mode
        sink.wait_until(lambda: len(sink.events()) >= webhook_wanted, timeout=60)
        time.sleep(1)  # a duplicate would arrive right behind
        events = sink.events()
        assert len(events) == webhook_wanted, events
        assert len({e["messageId"] for e in events}) == webhook_wanted  # each once
        assert set(sent) <= {e["messageId"] for e in events}
        for mode in visits:
            mine = [e for e in events if e["context"]["page"]["url"] == visits[mode].url]
            by_type = {e["type"]: e for e in mine}
            assert sorted(by_type) == ["alias", "group", "identify", "page", "track"], mine
            assert by_type["track"]["event"] == "Clicked"
            assert by_type["track"]["properties"] == {"button": "buy"}
            assert by_type["identify"]["traits"] == {"email": "browser@example.com",
                                                     "plan": "pro"}
            assert by_type["page"]["context"]["page"]["url"] == visits[mode].url
            assert all(e["context"]["library"]["name"] == "analytics.js" for e in mine)
    finally:
        shop.close()
        sink.stop()


def test_an_unknown_write_key_starts_no_tracker_and_sends_no_event(
        platform: PlatformUnderTest, browser: Any) -> None:
    shop = Shop()
    origin = f"http://127.0.0.1:{platform.port}"
    try:
        seen = visit(browser, shop.page(origin, "not-a-key"), user=None, wait_for_posts=0)
    finally:
        shop.close()
    # The loader reports a failed start to Segment with a metrics client of its own that
    # no settings reach (aborted here; on a network without internet it goes nowhere).
    outside = {u for _, u in seen.requests if not u.startswith((origin + "/", shop.origin + "/"))}
    assert outside <= {"https://api.segment.io/v1/m"}, outside
    assert seen.answers["GET /v1/projects/not-a-key/settings"][0] == 404
    assert seen.paths("POST", origin) == []  # one try (the settings), then nothing
    assert not any("CORS" in m or "Access-Control" in m for m in seen.console), seen.console


def test_the_gateway_serves_the_chunks_for_ever_and_compressed(
        platform: PlatformUnderTest, compose_engine: docker.DockerClient) -> None:
    gateway = compose_engine.containers.get(f"{platform.name}-gateway-1")
    listing = gateway.exec_run(["ls", "/usr/share/heliostat/tracker/analytics-next/bundles"])
    chunks = [n for n in listing.output.decode().split() if re.fullmatch(r".+\.bundle\.\w+\.js", n)]
    assert chunks, listing.output
    request = urllib.request.Request(
        f"http://127.0.0.1:{platform.port}/analytics-next/bundles/{chunks[0]}",
        headers={"Accept-Encoding": "gzip", "Origin": "http://shop.example"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/javascript")
        assert answer.headers["Content-Encoding"] == "gzip"
        assert "immutable" in answer.headers["Cache-Control"]
        assert answer.headers["Access-Control-Allow-Origin"] == "*"
