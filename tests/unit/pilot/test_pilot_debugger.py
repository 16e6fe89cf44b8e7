"""The live event debugger: an app's latest events on its page and from the API, and the
ones arriving while it is open, as server-sent events read with XREAD BLOCK from the
recent-events stream the clickstream router keeps in the test bed's real Redis (written
here with clickstream.recent_events, the router's own writer); resumed with Last-Event-ID;
each stream ending by itself after its lifetime; a bounded number at once.

The streams are read over real HTTP (Pilot served on a loopback port) with a socket
timeout, so an event that never comes fails the test instead of hanging it.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import redis
import requests
from flask.testing import FlaskClient
from pilot_testing import ADMIN_PASSWORD, CSRF, add_user, pilot_settings, serve, sign_in
from test_pilot_gunicorn import environment, free_port, wait_healthy

from clickstream import storage
from clickstream.migrate import migrate
from clickstream.recent_events import RecentEvents, stream_key
from pilot.app import create_app
from pilot.live_events import HEARTBEAT_SECONDS
from pilot.settings import Settings, SettingsError

PREFIX = "pilot-debugger-test"
LIFETIME = 3.0


@pytest.fixture
def clickstream_dsn(postgres) -> Iterator[str]:
    with postgres.fresh_database() as dsn:
        migrate(dsn)
        yield dsn


@pytest.fixture
def settings(pg_database, commander, clickstream_dsn, redis_url) -> Settings:
    return pilot_settings(pg_database, commander.url, clickstream_dsn=clickstream_dsn,
                          redis_url=redis_url, clickstream_prefix=PREFIX,
                          event_stream_seconds=LIFETIME, event_streams=8)


@pytest.fixture
def app_id(clickstream_dsn) -> int:
    with psycopg.connect(clickstream_dsn) as conn:
        return storage.create_app(conn, "web shop").id


@pytest.fixture
def recent(redis_url) -> RecentEvents:
    """The router's writer of the recent-events stream."""
    return RecentEvents(redis_url, PREFIX)


@pytest.fixture
def server(app, admin: FlaskClient) -> Iterator[tuple[str, int, str]]:
    """(host, port, session cookie) of Pilot on a loopback port, signed in as admin."""
    running, url = serve(app)
    cookie = admin.get_cookie("pilot_session")
    assert cookie is not None
    host, port = url.removeprefix("http://").split(":")
    yield host, int(port), cookie.value
    running.shutdown()


def track(name: str, user: str = "user-42", **more: Any) -> bytes:
    return json.dumps({"type": "track", "event": name, "userId": user,
                       "messageId": f"m-{name}", "properties": {"plan": "free"}, **more}
                      ).encode()


def ids_of(redis_url: str, app_id: int) -> list[str]:
    with redis.Redis.from_url(redis_url) as client:
        return [i.decode() for i, _ in client.xrange(stream_key(PREFIX, app_id))]


class Stream:
    """One text/event-stream answer, read event by event."""

    def __init__(self, server: tuple[str, int, str], path: str, timeout: float = 10,
                 **headers: str) -> None:
        host, port, cookie = server
        self.connection = http.client.HTTPConnection(host, port, timeout=timeout)
        self.connection.request("GET", path, headers={
            "Cookie": f"pilot_session={cookie}", "Accept": "text/event-stream", **headers})
        self.response = self.connection.getresponse()
        self.opened = time.monotonic()

    def next(self) -> dict[str, str] | None:
        """The next event's fields (a comment as `comment`), None at the end."""
        fields: dict[str, str] = {}
        while True:
            line = self.response.readline()
            if not line:
                return None
            text = line.decode().rstrip("\n")
            if not text:
                if fields:
                    return fields
                continue
            name, _, value = text.partition(":")
            fields[name or "comment"] = value.removeprefix(" ")

    def next_event(self) -> dict[str, str]:
        """The next event with data, skipping the keep-alive comments."""
        while True:
            found = self.next()
            assert found is not None, "the stream ended without the event"
            if "data" in found:
                return found

    def close(self) -> None:
        # The answer's file holds the socket open too: both, or nothing is closed.
        self.response.close()
        self.connection.close()


def test_an_event_added_after_the_stream_opened_arrives(server, recent, app_id, redis_url):
    recent.add([(app_id, track("Before"))])
    stream = Stream(server, f"/apps/{app_id}/events/stream")
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type").startswith("text/event-stream")
        assert stream.response.getheader("X-Accel-Buffering") == "no"
        assert stream.response.getheader("Cache-Control") == "no-store, no-transform"
        assert stream.next() == {"retry": "1000"}  # the stream is open and reading
        # Added now, while Pilot's thread waits in XREAD BLOCK; the one before is not sent.
        recent.add([(app_id, track("Signed Up")), (app_id + 1, track("Other app"))])
        event = stream.next_event()
        (_, newest) = ids_of(redis_url, app_id)
        assert event["id"] == newest
        data = json.loads(event["data"])
        assert data["id"] == newest
        assert data["summary"] == "track · Signed Up · user-42"
        assert data["event"]["event"] == "Signed Up"
        assert data["event"]["properties"] == {"plan": "free"}
        assert data["received_at"].endswith("+00:00")
        assert time.monotonic() - stream.opened < LIFETIME  # while still open, not after
    finally:
        stream.close()


def test_last_event_id_resumes_after_it(server, recent, app_id, redis_url):
    recent.add([(app_id, track(f"E{n}")) for n in range(4)])
    first, second, third, fourth = ids_of(redis_url, app_id)
    resumed = Stream(server, f"/apps/{app_id}/events/stream", **{"Last-Event-ID": second})
    try:
        assert resumed.response.status == 200
        assert [resumed.next_event()["id"] for _ in range(2)] == [third, fourth]
    finally:
        resumed.close()
    # The page's first connection says where to start with `after`; a reconnect's
    # Last-Event-ID (the browser's own) wins over it.
    after = Stream(server, f"/apps/{app_id}/events/stream?after={first}")
    try:
        assert json.loads(after.next_event()["data"])["event"]["event"] == "E1"
    finally:
        after.close()
    both = Stream(server, f"/apps/{app_id}/events/stream?after={first}",
                  **{"Last-Event-ID": third})
    try:
        assert both.next_event()["id"] == fourth
    finally:
        both.close()
    from_now = Stream(server, f"/apps/{app_id}/events/stream?after=")
    try:
        assert from_now.next() == {"retry": "1000"}
        recent.add([(app_id, track("E4"))])
        assert json.loads(from_now.next_event()["data"])["event"]["event"] == "E4"
    finally:
        from_now.close()
    for bad in ("yesterday", "1-2-3", "9" * 21, f"{2**64}-0"):
        refused = Stream(server, f"/apps/{app_id}/events/stream", **{"Last-Event-ID": bad})
        assert refused.response.status == 400, bad
        assert b"must be a stream id" in refused.response.read()
        refused.close()


def test_a_stream_ends_by_itself_after_its_lifetime(server, app_id):
    stream = Stream(server, f"/apps/{app_id}/events/stream")
    try:
        assert stream.response.status == 200
        assert stream.next() == {"retry": "1000"}
        # Quiet: nothing but keep-alive comments, then the end, without our closing it.
        while (found := stream.next()) is not None:
            assert found == {"comment": "waiting"}
        lasted = time.monotonic() - stream.opened
        assert LIFETIME - 0.5 <= lasted < LIFETIME + 2, lasted
    finally:
        stream.close()


def test_streams_at_once_are_bounded_and_a_closed_one_frees_its_slot(
        pg_database, commander, clickstream_dsn, redis_url, app_id):
    app = create_app(pilot_settings(pg_database, commander.url, clickstream_dsn=clickstream_dsn,
                                    redis_url=redis_url, clickstream_prefix=PREFIX,
                                    event_stream_seconds=30.0, event_streams=2))
    client = app.test_client()
    assert sign_in(client).status_code == 303
    running, url = serve(app)
    host, port = url.removeprefix("http://").split(":")
    where = (host, int(port), client.get_cookie("pilot_session").value)
    path = f"/apps/{app_id}/events/stream"
    streams = [Stream(where, path) for _ in range(2)]
    try:
        for stream in streams:
            assert stream.response.status == 200
            assert stream.next() == {"retry": "1000"}
        refused = Stream(where, path)
        assert (refused.response.status, refused.response.getheader("Retry-After")) == (
            503, "5")
        assert b"as many live event streams" in refused.response.read()
        refused.close()
        # A browser leaving the page: Pilot notices when a write fails (the second after
        # the close, two heartbeats at most) and the slot is free again, long before the
        # stream's 30 s are up.
        streams[0].close()
        closed = time.monotonic()
        while (again := Stream(where, path)).response.status == 503:
            again.close()
            assert time.monotonic() - closed < 2 * HEARTBEAT_SECONDS + 2, "slot not freed"
            time.sleep(0.1)  # between polls
        assert again.response.status == 200
        again.close()
    finally:
        for stream in streams:
            stream.close()
        running.shutdown()


def test_the_page_shows_the_latest_events_each_opening_to_its_json(admin, recent, app_id,
                                                                   redis_url):
    empty = admin.get(f"/apps/{app_id}/events")
    assert empty.status_code == 200
    text = empty.get_data(as_text=True)
    assert "No events yet. They appear here as the app sends them." in text
    assert f'data-stream="/apps/{app_id}/events/stream" data-after="0-0"' in text
    assert f'href="/apps/{app_id}/events"' in admin.get(f"/apps/{app_id}").get_data(
        as_text=True)
    recent.add([(app_id, track("First")),
                (app_id, json.dumps({"type": "identify", "anonymousId": "anon-1",
                                     "traits": {"email": "<ada@example.com>"}}).encode()),
                (app_id, b"not json")])
    newest = ids_of(redis_url, app_id)[-1]
    page = admin.get(f"/apps/{app_id}/events")
    text = page.get_data(as_text=True)
    assert f'data-after="{newest}"' in text  # the stream starts after the newest shown
    assert '<script src="/static/events.js" defer></script>' in text
    assert text.index("not a JSON object") < text.index("identify · anon-1") < text.index(
        "track · First · user-42")  # newest first
    assert text.count("<details>") == 3
    # The JSON, pretty and escaped.
    assert '&#34;email&#34;: &#34;&lt;ada@example.com&gt;&#34;' in text
    assert "<ada@example.com>" not in text
    script = admin.get("/static/events.js")
    assert script.status_code == 200 and b"new EventSource(" in script.data
    assert b"://" not in script.data  # nothing from elsewhere


def test_the_api_gives_the_latest_events_newest_first(admin, recent, app_id, redis_url):
    recent.add([(app_id, track(f"E{n}")) for n in range(5)])
    ids = ids_of(redis_url, app_id)
    answer = admin.get(f"/api/v1/apps/{app_id}/events?limit=3")
    assert answer.status_code == 200
    events = answer.get_json()["events"]
    assert [e["id"] for e in events] == ids[::-1][:3]
    assert [e["event"]["event"] for e in events] == ["E4", "E3", "E2"]
    assert len(admin.get(f"/api/v1/apps/{app_id}/events").get_json()["events"]) == 5
    add_user(admin, "viewer1")
    viewer = admin.application.test_client()
    assert sign_in(viewer, "viewer1", "viewer-password-0123").status_code == 303
    assert len(viewer.get(f"/api/v1/apps/{app_id}/events").get_json()["events"]) == 5
    assert viewer.get(f"/apps/{app_id}/events").status_code == 200
    for limit in ("0", "1001", "x", "-1"):
        bad = admin.get(f"/api/v1/apps/{app_id}/events?limit={limit}")
        assert bad.status_code == 400 and "`limit`" in bad.get_json()["error"], limit
    assert admin.get("/api/v1/apps/999/events").status_code == 404
    assert admin.get("/apps/999/events").status_code == 404
    assert admin.get("/apps/999/events/stream").status_code == 404
    assert admin.application.test_client().get(
        f"/api/v1/apps/{app_id}/events").status_code == 401


def test_without_redis_the_debugger_says_so(pg_database, commander, clickstream_dsn, app_id):
    for redis_url, reason in ((None, "REDIS_URL is empty"),
                              ("redis://127.0.0.1:1/0", "is unavailable")):
        app = create_app(pilot_settings(pg_database, commander.url,
                                        clickstream_dsn=clickstream_dsn, redis_url=redis_url))
        client = app.test_client()
        assert sign_in(client).status_code == 303
        page = client.get(f"/apps/{app_id}/events")
        assert page.status_code == 503
        assert reason in page.get_data(as_text=True)
        assert "The page keeps trying" in page.get_data(as_text=True)
        assert 'data-after=""' in page.get_data(as_text=True)  # from when it connects
        api = client.get(f"/api/v1/apps/{app_id}/events")
        assert (api.status_code, api.headers["Retry-After"]) == (503, "5")
        assert reason in api.get_json()["error"]
        assert client.get(f"/apps/{app_id}/events/stream").status_code == 503
        # A browser reconnecting names where it was: still a 503 that says why.
        resumed = client.get(f"/apps/{app_id}/events/stream",
                             headers={"Last-Event-ID": "1-0"})
        assert resumed.status_code == 503 and reason in resumed.get_data(as_text=True)
        health = client.get("/health").get_json()
        assert health["status"] == ("ok" if redis_url is None else "degraded")
        assert ("redis" in health["checks"]) == (redis_url is not None)


def test_health_reports_redis(client):
    assert client.get("/health").get_json() == {
        "status": "ok", "checks": {"postgres": "ok", "commander": "ok", "clickstream": "ok",
                                   "redis": "ok"}}


def test_settings_for_redis_kafka_and_the_streams(tmp_path):
    (tmp_path / "key").write_text("k" * 40)
    (tmp_path / "token").write_text("t")
    (tmp_path / "redis").write_text("p@ss/word\n")
    base = {"PILOT_SECRET_KEY_FILE": str(tmp_path / "key"), "COMMANDER_URL": "http://c:8000",
            "COMMANDER_TOKEN_FILE": str(tmp_path / "token"), "POSTGRES_DSN": "dbname=pilot"}
    # module.yaml's values without the clickstream module.
    plain = Settings.from_env({**base, "REDIS_URL": "redis://redis:6379/0",
                               "REDIS_PASSWORD_FILE": "", "KAFKA_BOOTSTRAP": "",
                               "CLICKSTREAM_TOPIC_PREFIX": "clickstream",
                               "CLICKSTREAM_TOPIC_PARTITIONS": ""})
    assert (plain.redis_url, plain.kafka_bootstrap, plain.clickstream_prefix,
            plain.clickstream_partitions) == ("redis://redis:6379/0", None, "clickstream", 6)
    assert (plain.event_stream_seconds, plain.event_streams) == (15.0, 4)  # 8 threads / 2
    full = Settings.from_env({**base, "REDIS_URL": "redis://redis:6379/0",
                              "REDIS_PASSWORD_FILE": str(tmp_path / "redis"),
                              "KAFKA_BOOTSTRAP": "kafka-0:9092,kafka-1:9092",
                              "CLICKSTREAM_TOPIC_PREFIX": "cs",
                              "CLICKSTREAM_TOPIC_PARTITIONS": "12",
                              "PILOT_THREADS": "3", "PILOT_EVENT_STREAM_SECONDS": "10"})
    assert full.redis_url == "redis://:p%40ss%2Fword@redis:6379/0"
    assert "p@ss" not in repr(full) and "p%40ss" not in repr(full)
    assert (full.kafka_bootstrap, full.clickstream_prefix, full.clickstream_partitions) == (
        "kafka-0:9092,kafka-1:9092", "cs", 12)
    assert (full.event_stream_seconds, full.event_streams) == (10.0, 1)
    assert Settings.from_env(base).redis_url is None
    with pytest.raises(SettingsError, match="PILOT_EVENT_STREAM_SECONDS must be a whole number"
                                            " from 1 to 60"):
        Settings.from_env({**base, "PILOT_EVENT_STREAM_SECONDS": "600"})


def test_under_gunicorn_a_stream_leaves_threads_for_the_pages(tmp_path, pg_database, commander,
                                                              clickstream_dsn, redis_url,
                                                              app_id, recent):
    port = free_port()
    env = {**environment(tmp_path, pg_database, commander.url, port),
           "WEB_CONCURRENCY": "1", "PILOT_THREADS": "2",  # so one stream at most
           "PILOT_EVENT_STREAM_SECONDS": "4", "CLICKSTREAM_POSTGRES_DSN": clickstream_dsn,
           "REDIS_URL": redis_url, "CLICKSTREAM_TOPIC_PREFIX": PREFIX}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:pilot.gunicorn_conf",
         "pilot.app:create_app()"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        browser = requests.Session()
        form = browser.get(f"{url}/login", timeout=10)
        signed = browser.post(f"{url}/login", allow_redirects=False, timeout=30, data={
            "username": "admin", "password": ADMIN_PASSWORD,
            "csrf_token": CSRF.search(form.text)[1]})
        assert signed.status_code == 303
        where = ("127.0.0.1", port, browser.cookies["pilot_session"])
        stream = Stream(where, f"/apps/{app_id}/events/stream")
        try:
            assert stream.response.status == 200
            assert stream.next() == {"retry": "1000"}
            # The other thread serves pages, and refuses a second stream.
            assert browser.get(f"{url}/api/v1/me", timeout=5).json()["username"] == "admin"
            second = browser.get(f"{url}/apps/{app_id}/events/stream", timeout=5)
            assert second.status_code == 503
            recent.add([(app_id, track("Under gunicorn"))])
            assert json.loads(stream.next_event()["data"])["summary"] == (
                "track · Under gunicorn · user-42")
            while stream.next() is not None:  # then it ends by itself
                pass
            assert time.monotonic() - stream.opened < 4 + 2
        finally:
            stream.close()
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
