"""Segment's server-side libraries from their public registries, unmodified, against a
real Event API: Node.js (@segment/analytics-node, pinned by package-lock.json) and
Python (segment-analytics-python). Each call type arrives once at a webhook destination
with its fields, and no late copy follows; a permanent refusal (an unknown write key,
401; an invalid event, 400) is given up by the library after one request; a transient
one (the app's rate limit, 429 with Retry-After) is retried until the events are taken,
and they are delivered once. Requests are counted on the server, by the Event API's
metrics, not by what the library says it did.

The Node library is installed once into the dev cache, keyed on its lock file (see
``npm_packages``); without Node.js 20+ and npm, or the npm registry, the test fails and
says what is missing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.infra.http_sink import HttpSink
from tests.infra.tcp_proxy import TcpProxy
from tests.integration.clickstream import npm_packages
from tests.integration.clickstream.pipeline import Pipeline

SDK_NODE = Path(__file__).parent / "sdk_node"
TYPES = ["alias", "group", "identify", "page", "screen", "track"]


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    return npm_packages.installed(SDK_NODE)


def _node_env(sdk: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "NODE_PATH": str(sdk / "node_modules"), **extra}


def _run_node(sdk: Path, host: str, key: str, mode: str,
              before_first_request: Callable[[], None] | None = None) -> dict[str, Any]:
    """deliver.cjs's report; ``before_first_request`` runs once the library is loaded,
    just before it is told to make its calls."""
    argv = [npm_packages.node(), str(SDK_NODE / "deliver.cjs"), host, key, mode]
    if before_first_request is None:
        done = subprocess.run(argv, env=_node_env(sdk), capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])
    with subprocess.Popen(argv, env=_node_env(sdk, DELIVER_ON_SIGNAL="1"), text=True,
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as node:
        try:
            ready = node.stdout.readline()
            assert json.loads(ready or "{}").get("ready"), (ready, node.stderr.read())
            before_first_request()
            out, err = node.communicate("go\n", timeout=120)
        finally:
            if node.poll() is None:
                node.kill()
    assert node.returncode == 0, err
    return json.loads(out.splitlines()[-1])


def _metric(pipeline: Pipeline, sample: str) -> float:
    """One sample of the Event API's /metrics (e.g. ``name{label="x"}``), 0 if absent."""
    text = requests.get(pipeline.api_url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _rejected(pipeline: Pipeline, reason: str) -> float:
    """Requests the Event API refused for ``reason`` (counted once per request)."""
    return _metric(pipeline, f'clickstream_events_rejected_total{{reason="{reason}"}}')


def _produced(pipeline: Pipeline) -> float:
    """Events the Event API made durable, i.e. accepted with a 200."""
    return _metric(pipeline, "clickstream_events_produced_total")


def _no_more_than(sink: HttpSink, count: int, watch: float = 1.0) -> None:
    """Watch the sink for ``watch`` seconds after ``count`` events arrived: a late
    copy (a redelivery, a retried request) would show up as one more."""
    deadline = time.monotonic() + watch
    while time.monotonic() < deadline:
        assert len(sink.events()) == count, (
            f"{len(sink.events())} events arrived, {count} expected: "
            f"{[(e.get('type'), e.get('userId'), e.get('messageId')) for e in sink.events()]}")
        time.sleep(0.05)


class _Gate:
    """A TCP forwarder on loopback that closes every connection at once until
    :meth:`open`, then forwards them to ``target``: a Postgres that refuses, then
    answers."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.opened = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def open(self) -> None:
        self.opened.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if not self.opened.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=TcpProxy._pump, args=(source, sink),
                                 daemon=True).start()

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def _delivering_pipeline(pipeline: Pipeline, sink: HttpSink,
                         rate_limit: int | None = None) -> str:
    """An app with a webhook destination to ``sink``, the Event API, router and webhook
    worker running; its write key."""
    app_id, key = pipeline.create_app(rate_limit=rate_limit)
    pipeline.create_destination(app_id, "Hook", "webhook", {"url": sink.url})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("webhook")
    return key


def _use_up_rate_limit(pipeline: Pipeline, key: str, events: int) -> None:
    """Take every token of the app's bucket (rate ``events``/s, one-second burst) with
    one batch, so that the next request within a second is answered 429."""
    batch = {"batch": [{"type": "track", "userId": "filler", "event": "Filler"}] * events}
    response = pipeline.post("/v1/batch", batch, key)
    assert response.status_code == 200, response.text


def test_node_library_delivers_every_call_once_to_a_webhook(
        pipeline: Pipeline, webhook_sink: HttpSink, node_sdk: Path) -> None:
    key = _delivering_pipeline(pipeline, webhook_sink)

    results = {mode: _run_node(node_sdk, pipeline.api_url, key, mode)
               for mode in ("single", "batch")}
    assert results["single"]["statuses"] == [200] * 6, results
    assert results["batch"]["statuses"] == [200], results
    assert [r["errors"] for r in results.values()] == [[], []]

    webhook_sink.wait_until(lambda: len(webhook_sink.events()) >= 12)
    _no_more_than(webhook_sink, 12)
    events = webhook_sink.events()
    assert len({e["messageId"] for e in events}) == len(events) == 12
    assert _produced(pipeline) == 12  # the Event API took each request once
    for mode in ("single", "batch"):
        mine = {e["type"]: e for e in events if e["userId"] == f"node-user-{mode}"}
        assert sorted(mine) == TYPES, mode
        assert mine["identify"]["traits"] == {"email": "node@example.com", "plan": "pro"}
        assert mine["track"]["event"] == "Signed Up"
        assert mine["track"]["properties"] == {"plan": "pro", "seats": 3}
        assert mine["page"]["name"] == "Install"
        assert mine["page"]["properties"]["path"] == "/install"
        assert mine["screen"]["name"] == "Home"
        assert mine["group"]["groupId"] == "org-1"
        assert mine["alias"]["previousId"] == "anon-node"
        for event in mine.values():
            assert event["context"]["library"]["name"] == "@segment/analytics-node"
            # The library sends sentAt once per batch; each event keeps it.
            assert event.get("sentAt") and event["receivedAt"] and event["timestamp"], event
            assert "writeKey" not in event


def test_node_library_gives_up_an_unknown_key_after_one_request(
        pipeline: Pipeline, node_sdk: Path) -> None:
    pipeline.event_api()
    started = time.monotonic()
    result = _run_node(node_sdk, pipeline.api_url, "not-a-key", "batch")
    assert result["requests"] == 1 and result["statuses"] == [401], result
    assert [e["code"] for e in result["errors"]] == ["delivery_failure"] * 6
    assert all("401" in e["reason"] for e in result["errors"]), result["errors"]
    assert time.monotonic() - started < 30
    assert _rejected(pipeline, "unknown_write_key") == 1.0


def test_python_library_reads_the_error_and_gives_up_an_unknown_key(
        pipeline: Pipeline) -> None:
    from segment.analytics import Client
    from segment.analytics.request import APIError

    pipeline.event_api()
    errors: list[Exception] = []
    # The library's default retry budget: a 401 it misread would be retried ten times.
    client = Client("not-a-key", host=pipeline.api_url,
                    on_error=lambda error, _batch: errors.append(error))
    client.track("user-1", "Signed Up")
    client.identify("user-1", {"plan": "pro"})
    started = time.monotonic()
    client.flush()
    client.shutdown()
    assert time.monotonic() - started < 30
    assert len(errors) == 1 and isinstance(errors[0], APIError), errors
    assert (errors[0].status, errors[0].code, errors[0].message) == (
        401, "unknown_write_key", "unknown write key")
    assert _rejected(pipeline, "unknown_write_key") == 1.0


def test_python_library_delivers_every_call_once_to_a_webhook(
        pipeline: Pipeline, webhook_sink: HttpSink) -> None:
    from segment.analytics import Client

    key = _delivering_pipeline(pipeline, webhook_sink)
    errors: list[Exception] = []
    started = datetime.now(timezone.utc)
    client = Client(key, host=pipeline.api_url,
                    on_error=lambda error, _batch: errors.append(error))
    sent = {message["type"]: message for _ok, message in [
        client.identify("py-user", {"email": "py@example.com", "plan": "pro"}),
        client.track("py-user", "Signed Up", {"plan": "pro", "seats": 3}),
        client.page("py-user", "Docs", "Install", {"path": "/install"}),
        client.screen("py-user", "App", "Home"),
        client.group("py-user", "org-1", {"name": "Org"}),
        client.alias("anon-py", "py-user"),
    ]}
    client.flush()
    client.shutdown()
    assert errors == []

    webhook_sink.wait_until(lambda: len(webhook_sink.events()) >= 6)
    _no_more_than(webhook_sink, 6)
    events = {e["type"]: e for e in webhook_sink.events()}
    assert sorted(events) == TYPES
    assert len({e["messageId"] for e in events.values()}) == 6
    assert _produced(pipeline) == 6
    assert events["identify"]["traits"] == {"email": "py@example.com", "plan": "pro"}
    assert events["track"]["event"] == "Signed Up"
    assert events["track"]["properties"] == {"plan": "pro", "seats": 3}
    assert (events["page"]["category"], events["page"]["name"]) == ("Docs", "Install")
    assert events["page"]["properties"] == {"path": "/install"}
    assert (events["screen"]["category"], events["screen"]["name"]) == ("App", "Home")
    assert events["group"]["groupId"] == "org-1"
    assert events["group"]["traits"] == {"name": "Org"}
    assert events["alias"]["previousId"] == "anon-py"
    for kind, event in events.items():
        assert event["userId"] == "py-user", event
        # The library's own id and time, as it made them.
        assert event["messageId"] == sent[kind]["messageId"], event
        assert event["originalTimestamp"] == sent[kind]["timestamp"], event
        assert event["context"]["library"]["name"] == "analytics-python"
        # The library sends sentAt once per batch; each event keeps it.
        sent_at = datetime.fromisoformat(event["sentAt"])
        assert started <= sent_at <= datetime.now(timezone.utc), event
        assert event["receivedAt"] and event["timestamp"], event
        assert "writeKey" not in event


def test_node_library_retries_a_rate_limited_batch_and_it_is_delivered_once(
        pipeline: Pipeline, webhook_sink: HttpSink, node_sdk: Path) -> None:
    key = _delivering_pipeline(pipeline, webhook_sink, rate_limit=6)
    # The bucket is emptied just before the library's first request: that one is
    # answered 429 with Retry-After: 1, by when the bucket is full again.
    result = _run_node(node_sdk, pipeline.api_url, key, "batch",
                       before_first_request=lambda: _use_up_rate_limit(pipeline, key, 6))
    assert result["statuses"] == [429, 200], result
    assert result["errors"] == [], result
    first, retry = result["attempts"]
    assert first["retryAfter"] == "1" and retry["retryCount"] == "1", result
    assert retry["at"] - first["at"] >= 1.0, result  # it waited as it was told
    # On the server: one request refused for the rate limit, then one batch taken.
    assert _rejected(pipeline, "rate_limited") == 1.0
    assert _produced(pipeline) == 6 + 6

    webhook_sink.wait_until(lambda: len(webhook_sink.events()) >= 12)
    _no_more_than(webhook_sink, 12)
    mine = [e for e in webhook_sink.events() if e["userId"] == "node-user-batch"]
    assert sorted(e["type"] for e in mine) == TYPES
    assert len({e["messageId"] for e in mine}) == 6


def test_node_library_retries_a_503_and_the_batch_is_delivered_once(
        pipeline: Pipeline, webhook_sink: HttpSink, node_sdk: Path) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook", {"url": webhook_sink.url})
    # The Event API reaches Postgres through a gate that is shut at first: it cannot
    # check the (new to it) write key and answers 503, "retry later".
    real = psycopg.conninfo.conninfo_to_dict(pipeline.dsn)
    gate = _Gate(str(real["host"]), int(real["port"]))
    try:
        pipeline.event_api(POSTGRES_DSN=psycopg.conninfo.make_conninfo(
            pipeline.dsn, host="127.0.0.1", port=str(gate.port)))
        pipeline.router()
        pipeline.worker("webhook")

        def open_after_first_503() -> None:
            deadline = time.monotonic() + 30
            while _rejected(pipeline, "unavailable") < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            gate.open()

        opener = threading.Thread(target=open_after_first_503, daemon=True)
        result = _run_node(node_sdk, pipeline.api_url, key, "batch",
                           before_first_request=opener.start)
        opener.join(5)
    finally:
        gate.close()
    assert result["statuses"] == [503, 200], result
    assert result["errors"] == [], result
    assert result["attempts"][1]["retryCount"] == "1", result
    # On the server: one request refused as unavailable, then the batch taken once.
    assert _rejected(pipeline, "unavailable") == 1.0
    assert _produced(pipeline) == 6

    webhook_sink.wait_until(lambda: len(webhook_sink.events()) >= 6)
    _no_more_than(webhook_sink, 6)
    events = webhook_sink.events()
    assert sorted(e["type"] for e in events) == TYPES
    assert len({e["messageId"] for e in events}) == 6


def test_node_library_gives_up_an_invalid_event_after_one_request(
        pipeline: Pipeline, node_sdk: Path) -> None:
    _app_id, key = pipeline.create_app()
    pipeline.event_api()
    started = time.monotonic()
    # A blank event name: the library sends it, the Event API refuses the batch (400).
    result = _run_node(node_sdk, pipeline.api_url, key, "invalid")
    assert time.monotonic() - started < 30
    assert result["requests"] == 1 and result["statuses"] == [400], result
    assert [e["code"] for e in result["errors"]] == ["delivery_failure"] * 2, result
    assert all("400" in e["reason"] for e in result["errors"]), result["errors"]
    assert _rejected(pipeline, "invalid_event") == 1.0  # one request, not retried
    assert _produced(pipeline) == 0  # a batch is refused whole


def test_python_library_retries_a_rate_limited_batch_and_it_is_delivered_once(
        pipeline: Pipeline, webhook_sink: HttpSink) -> None:
    from segment.analytics import Client

    key = _delivering_pipeline(pipeline, webhook_sink, rate_limit=6)
    errors: list[Exception] = []
    # upload_size 6: the six calls below leave in one request as soon as they are queued.
    client = Client(key, host=pipeline.api_url, upload_size=6, upload_interval=1.0,
                    on_error=lambda error, _batch: errors.append(error))
    _use_up_rate_limit(pipeline, key, 6)
    client.identify("py-user", {"plan": "pro"})
    client.track("py-user", "Signed Up", {"plan": "pro"})
    client.page("py-user", "Docs", "Install")
    client.screen("py-user", "App", "Home")
    client.group("py-user", "org-1")
    client.alias("anon-py", "py-user")
    started = time.monotonic()
    client.flush()
    waited = time.monotonic() - started
    client.shutdown()
    assert errors == []
    assert waited >= 0.9, waited  # it waited out the Retry-After before the retry
    assert _rejected(pipeline, "rate_limited") == 1.0
    assert _produced(pipeline) == 6 + 6

    webhook_sink.wait_until(lambda: len(webhook_sink.events()) >= 12)
    _no_more_than(webhook_sink, 12)
    mine = [e for e in webhook_sink.events() if e["userId"] == "py-user"]
    assert sorted(e["type"] for e in mine) == TYPES
    assert len({e["messageId"] for e in mine}) == 6


def test_python_library_gives_up_an_invalid_event_after_one_request(
        pipeline: Pipeline) -> None:
    from segment.analytics import Client
    from segment.analytics.request import APIError

    _app_id, key = pipeline.create_app()
    pipeline.event_api()
    errors: list[Exception] = []
    # The library's default retry budget (ten): a 400 it retried would show here.
    # upload_size 2: both calls leave in one request.
    client = Client(key, host=pipeline.api_url, upload_size=2,
                    on_error=lambda error, _batch: errors.append(error))
    client.track("py-user", "  ")  # a blank event name: refused by the Event API
    client.track("py-user", "Signed Up")
    started = time.monotonic()
    client.flush()
    client.shutdown()
    assert time.monotonic() - started < 30
    assert len(errors) == 1 and isinstance(errors[0], APIError), errors
    assert (errors[0].status, errors[0].code) == (400, "invalid_event"), errors[0]
    assert _rejected(pipeline, "invalid_event") == 1.0  # one request, not retried
    assert _produced(pipeline) == 0
