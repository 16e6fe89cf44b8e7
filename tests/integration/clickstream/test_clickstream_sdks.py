"""Segment's server-side libraries from their public registries, unmodified, against a
real Event API: Node.js (@segment/analytics-node, pinned by package-lock.json) and
Python. Each call type arrives once at a webhook destination with its fields; an
unknown write key is given up by the library after one request.

The Node library is installed once into the dev cache, keyed on its lock file (see
``npm_packages``); without Node.js 20+ and npm, or the npm registry, the test fails and
says what is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.infra.http_sink import HttpSink
from tests.integration.clickstream import npm_packages
from tests.integration.clickstream.pipeline import Pipeline

SDK_NODE = Path(__file__).parent / "sdk_node"
TYPES = ["alias", "group", "identify", "page", "screen", "track"]


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    return npm_packages.installed(SDK_NODE)


def _run_node(sdk: Path, host: str, key: str, mode: str) -> dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "NODE_PATH": str(sdk / "node_modules")}
    done = subprocess.run([npm_packages.node(), str(SDK_NODE / "deliver.cjs"), host, key, mode],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _rejected(pipeline: Pipeline, reason: str) -> float:
    text = requests.get(pipeline.api_url + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f'clickstream_events_rejected_total{{reason="{reason}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_node_library_delivers_every_call_once_to_a_webhook(
        pipeline: Pipeline, webhook_sink: HttpSink, node_sdk: Path) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Hook", "webhook", {"url": webhook_sink.url})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("webhook")

    results = {mode: _run_node(node_sdk, pipeline.api_url, key, mode)
               for mode in ("single", "batch")}
    assert results["single"]["statuses"] == [200] * 6, results
    assert results["batch"]["statuses"] == [200], results
    assert [r["errors"] for r in results.values()] == [[], []]

    webhook_sink.wait_until(lambda: len(webhook_sink.events()) >= 12)
    events = webhook_sink.events()
    assert len({e["messageId"] for e in events}) == len(events) == 12
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
