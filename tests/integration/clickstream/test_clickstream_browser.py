"""analytics.js in a real browser (the system's headless Chromium, driven by Playwright)
on a page of another origin, posting to a real Event API: every call arrives once at a
webhook destination with its fields, in standard and in batching mode; a refused request
(unknown write key, origin not allowed) is given up after one try; the console shows no
CORS error.

analytics.js is Segment's browser build (@segment/analytics-next, pinned by the lock file
in ``sdk_browser``), served by the page's own server here, with its settings given at
load, so nothing is fetched from outside this machine. The tracker as the platform serves
it (its gateway, and the settings from /v1/projects/{writeKey}/settings) is tested in
tests/e2e/heliostat/test_compose_tracker.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.infra.http_sink import HttpSink
from tests.integration.clickstream import npm_packages
from tests.integration.clickstream.pipeline import Pipeline
from tests.integration.clickstream.test_clickstream_admin import cli

SDK_BROWSER = Path(__file__).parent / "sdk_browser"
PAGE_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<link rel="icon" href="data:,">
<script src="/analytics/index.js"></script></head>
<body><h1>Shop</h1></body></html>
"""

# Loads analytics.js with the settings its CDN would serve, makes one call of each kind
# the browser library has, and returns each call's event and delivery result.
TRACK_EVERYTHING = """async ({writeKey, apiHost, batching, user}) => {
  const segment = {apiKey: writeKey, apiHost, protocol: 'http'}
  if (batching) {
    segment.deliveryStrategy = {strategy: 'batching', config: {size: 5, timeout: 300}}
  }
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
    {writeKey, cdnSettings: {integrations: {'Segment.io': segment}}})
  const contexts = await Promise.all([
    analytics.identify(user, {email: 'browser@example.com', plan: 'pro'}),
    analytics.track('Clicked', {button: 'buy'}),
    analytics.page('Docs', 'Install', {path: '/install'}),
    analytics.group('org-1', {name: 'Org'}),
    analytics.alias(user + '-new', user),
  ])
  return contexts.map((ctx) => ({
    type: ctx.event.type,
    messageId: ctx.event.messageId,
    event: JSON.parse(JSON.stringify(ctx.event)),
    failed: ctx.failedDelivery() ? String(ctx.failedDelivery().reason) : null,
  }))
}"""


class PageServer:
    """The shop's web server: its page and analytics.js, on its own loopback port."""

    def __init__(self, umd: Path) -> None:
        files = {f"/analytics/{p.name}": p for p in umd.iterdir() if p.suffix == ".js"}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path == "/":
                    body, kind = PAGE_HTML, "text/html; charset=utf-8"
                elif path in files:
                    body, kind = files[path].read_bytes(), "text/javascript"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Visit:
    """What one page visit did: its calls' results, the console, the network."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    posts: list[tuple[str, int | None]] = field(default_factory=list)  # to the Event API
    failed_requests: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)  # requests off this machine

    def cors_errors(self) -> list[str]:
        return [m for m in self.console if "CORS" in m or "Access-Control" in m]


@pytest.fixture(scope="module")
def shop() -> Iterator[PageServer]:
    umd = npm_packages.installed(SDK_BROWSER) / "node_modules" / "@segment" / \
        "analytics-next" / "dist" / "umd"
    server = PageServer(umd)
    yield server
    server.close()


def _visit(browser: Any, shop: PageServer, api_url: str, key: str, *, batching: bool,
           user: str, posts: int) -> Visit:
    """Open the shop's page, make the calls, and wait for ``posts`` answers to them."""
    visit = Visit()
    api = urlsplit(api_url)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("console", lambda m: visit.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: visit.console.append(f"pageerror: {e}"))

        def on_request(request: Any) -> None:
            host = urlsplit(request.url).hostname
            if request.url.startswith("http") and host not in ("127.0.0.1", "localhost"):
                visit.outside.append(request.url)

        def on_response(response: Any) -> None:
            if response.url.startswith(api_url) and response.request.method == "POST":
                visit.posts.append((urlsplit(response.url).path, response.status))

        page.on("request", on_request)
        page.on("response", on_response)
        page.on("requestfailed", lambda r: visit.failed_requests.append(
            f"{r.method} {r.url}: {r.failure}"))
        page.goto(shop.url)
        assert urlsplit(page.url).port != api.port  # another origin than the Event API
        visit.calls = page.evaluate(TRACK_EVERYTHING, {
            "writeKey": key, "apiHost": f"{api.netloc}/v1", "batching": batching,
            "user": user})
        # The calls resolve once answered, but Playwright may report the responses
        # a moment later; waiting on the page lets its events through.
        deadline = time.monotonic() + 15
        while len(visit.posts) < posts and time.monotonic() < deadline:
            page.wait_for_timeout(50)
    finally:
        context.close()
    return visit


def test_analytics_js_on_another_origin_delivers_every_call_once(
        pipeline: Pipeline, webhook_sink: HttpSink, browser: Any, shop: PageServer) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook", {"url": webhook_sink.url})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("webhook")

    visits = {mode: _visit(browser, shop, pipeline.api_url, key, batching=mode == "batching",
                           user=f"browser-{mode}", posts=1 if mode == "batching" else 5)
              for mode in ("standard", "batching")}
    for mode, visit in visits.items():
        assert [c["failed"] for c in visit.calls] == [None] * 5, (mode, visit)
        assert visit.console == [] and visit.failed_requests == [], (mode, visit)
        assert visit.outside == [], (mode, visit.outside)
    assert sorted(p for p, _ in visits["standard"].posts) == sorted(
        ["/v1/i", "/v1/t", "/v1/p", "/v1/g", "/v1/a"])
    assert visits["batching"].posts == [("/v1/b", 200)]
    assert {s for v in visits.values() for _, s in v.posts} == {200}

    sent = {c["messageId"]: (mode, c["event"]) for mode, v in visits.items() for c in v.calls}
    webhook_sink.wait_until(lambda: set(sent) <= {e["messageId"] for e in webhook_sink.events()})
    events = webhook_sink.events()
    assert sorted(e["messageId"] for e in events) == sorted(sent)  # each once, nothing else
    for mode in ("standard", "batching"):
        user = f"browser-{mode}"
        mine = {e["type"]: e for e in events if sent[e["messageId"]][0] == mode}
        assert sorted(mine) == ["alias", "group", "identify", "page", "track"]
        assert mine["identify"]["userId"] == user
        assert mine["identify"]["traits"] == {"email": "browser@example.com", "plan": "pro"}
        assert mine["track"]["event"] == "Clicked"
        assert mine["track"]["properties"] == {"button": "buy"}
        assert (mine["page"]["category"], mine["page"]["name"]) == ("Docs", "Install")
        assert mine["page"]["properties"]["path"] == "/install"
        assert mine["group"]["groupId"] == "org-1"
        assert mine["alias"]["previousId"] == user
        for event in mine.values():
            made = sent[event["messageId"]][1]  # the event as the library made it
            kept = ("type", "userId", "anonymousId", "event", "name", "category",
                    "properties", "traits", "groupId", "previousId")
            assert {k: event.get(k) for k in kept if k in made} == {
                k: made[k] for k in kept if k in made}, (mode, event, made)
            assert event["context"]["library"]["name"] == "analytics.js"
            assert event["context"]["page"]["url"] == shop.url
            assert event.get("sentAt"), (mode, event)  # batching sends it once per batch
            assert "writeKey" not in event


def test_refusals_are_readable_and_given_up_after_one_try(
        pipeline: Pipeline, browser: Any, shop: PageServer) -> None:
    _app_id, key = pipeline.create_app()
    pipeline.event_api()
    changed = cli(pipeline.dsn, "admin", "app", "set-allowed-origins", "shop",
                  "https://shop.example")
    assert changed.returncode == 0, changed.stderr

    unknown = _visit(browser, shop, pipeline.api_url, "not-a-key", batching=False,
                     user="u-unknown", posts=5)
    not_allowed = _visit(browser, shop, pipeline.api_url, key, batching=False,
                         user="u-origin", posts=5)
    for visit, status in ((unknown, 401), (not_allowed, 403)):
        # One POST per call, each refused and dropped by the library, not retried.
        assert sorted(visit.posts) == sorted(
            (p, status) for p in ("/v1/i", "/v1/t", "/v1/p", "/v1/g", "/v1/a")), visit
        assert all(f"{status}" in (c["failed"] or "") for c in visit.calls), visit.calls
        assert visit.cors_errors() == [] and visit.failed_requests == [], visit
    metrics = requests.get(pipeline.api_url + "/metrics", timeout=5).text
    assert 'clickstream_events_rejected_total{reason="unknown_write_key"} 5.0' in metrics
    assert 'clickstream_events_rejected_total{reason="origin_not_allowed"} 5.0' in metrics
