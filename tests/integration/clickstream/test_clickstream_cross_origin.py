"""What a browser needs from the Event API, on real Kafka and Postgres: CORS on every
answer (preflights, errors, unknown paths), per-app allowed origins set with the admin
CLI, `text/plain` bodies and analytics.js's one-letter paths; and the error fields and
event fields that Segment's libraries rely on."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime

import pytest
import redis
import requests

from tests.integration.clickstream.pipeline import Pipeline
from tests.integration.clickstream.test_clickstream_admin import cli

PAGE = "https://shop.example"  # the origin of the page that tracks
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}  # what analytics.js sends


@pytest.fixture
def api(pipeline: Pipeline) -> tuple[Pipeline, int, str]:
    app_id, key = pipeline.create_app()
    pipeline.event_api()
    return pipeline, app_id, key


def _raw_events(pipeline: Pipeline, expect: int) -> list[dict]:
    messages = pipeline.read_topic(f"{pipeline.prefix}.raw", expect=expect, timeout=15)
    return [json.loads(m.value()) for m in messages]


def _post_text(pipeline: Pipeline, path: str, body: dict, origin: str | None = PAGE,
               **headers: str) -> requests.Response:
    """A POST as analytics.js makes it: JSON as text/plain, the key in the body."""
    if origin is not None:
        headers["Origin"] = origin
    return requests.post(pipeline.api_url + path, data=json.dumps(body), timeout=30,
                         headers={**TEXT, **headers})


def test_preflight_is_answered_for_any_path_with_what_clients_send(api) -> None:
    pipeline, _app_id, _key = api
    for path in ("/v1/t", "/v1/batch", "/v1/import", "/v1/no-such-path"):
        response = requests.options(pipeline.api_url + path, timeout=10, headers={
            "Origin": PAGE, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-retry-count,"
                                              "x-request-id,x-forwarded-for"})
        assert response.status_code == 204, (path, response.text)
        headers = response.headers
        assert headers["Access-Control-Allow-Origin"] == PAGE
        assert "POST" in headers["Access-Control-Allow-Methods"]
        allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
        assert allowed >= {"authorization", "content-type", "x-retry-count", "x-request-id"}
        assert "x-forwarded-for" not in allowed  # would let a page forge context.ip
        assert int(headers["Access-Control-Max-Age"]) >= 600
        assert "origin" in headers["Vary"].lower()
        assert response.content == b""


def test_every_answer_carries_cors_and_a_code_and_message(api) -> None:
    pipeline, _app_id, key = api
    url = pipeline.api_url
    origin = {"Origin": PAGE}
    track = {"userId": "u-1", "event": "Clicked"}
    answers = {
        "accepted": (_post_text(pipeline, "/v1/t", {**track, "writeKey": key}), 200, None),
        "bad JSON": (requests.post(url + "/v1/t", data=b"{", headers={**TEXT, **origin},
                                   auth=(key, ""), timeout=30), 400, "invalid_json"),
        "invalid event": (_post_text(pipeline, "/v1/t", {"userId": "u", "writeKey": key}),
                          400, "invalid_event"),
        "no key": (_post_text(pipeline, "/v1/t", track), 401, "no_write_key"),
        "unknown key": (_post_text(pipeline, "/v1/t", {**track, "writeKey": "nope"}), 401,
                        "unknown_write_key"),
        "too large": (_post_text(pipeline, "/v1/t", {**track, "writeKey": key,
                                                      "properties": {"x": "y" * 40_000}}),
                      413, "too_large"),
        "unknown path": (requests.post(url + "/v1/nope", data=b"{}", headers=origin,
                                       timeout=30), 404, "not_found"),
        "wrong method": (requests.get(url + "/v1/t", headers=origin, timeout=30), 405,
                         "method_not_allowed"),
    }
    wrong = {name: (r.status_code, r.text[:200]) for name, (r, status, _c) in answers.items()
             if r.status_code != status}
    assert wrong == {}
    for name, (response, _status, code) in answers.items():
        assert response.headers.get("Access-Control-Allow-Origin") == PAGE, name
        assert "Retry-After" in response.headers["Access-Control-Expose-Headers"], name
        body = response.json()
        if code is None:
            assert body == {"success": True}
            continue
        assert body["success"] is False, name
        assert body["code"] == code, name
        assert body["message"] == body["error"] and body["message"], name
    assert "POST" in answers["wrong method"][0].headers["Allow"]
    assert len(_raw_events(pipeline, expect=1)) == 1  # only the accepted one


def test_rate_limited_answer_is_transient_and_readable_from_a_page(pipeline: Pipeline) -> None:
    _app_id, key = pipeline.create_app(rate_limit=2)
    pipeline.event_api()
    batch = {"writeKey": key, "batch": [{"type": "track", "userId": "u", "event": "e"}] * 2}
    assert _post_text(pipeline, "/v1/b", batch).status_code == 200
    limited = _post_text(pipeline, "/v1/b", batch)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert limited.headers["Access-Control-Allow-Origin"] == PAGE
    assert int(limited.headers["Retry-After"]) >= 1
    assert "Retry-After" in limited.headers["Access-Control-Expose-Headers"]


def test_short_paths_take_text_plain_json_and_batches_keep_sent_at(api) -> None:
    pipeline, _app_id, key = api
    singles = {
        "/v1/t": {"userId": "u-1", "event": "Clicked"},
        "/v1/i": {"userId": "u-1", "traits": {"plan": "pro"}},
        "/v1/p": {"anonymousId": "a-1", "name": "Home"},
        "/v1/s": {"userId": "u-1", "name": "Cart"},
        "/v1/g": {"userId": "u-1", "groupId": "g-1"},
        "/v1/a": {"userId": "u-1", "previousId": "a-1"},
    }
    for path, event in singles.items():
        response = _post_text(pipeline, path, {**event, "writeKey": key})
        assert response.status_code == 200, (path, response.text)
    # Batching mode: the key and sentAt at the top, as analytics.js sends them; the
    # client's clock runs an hour ahead.
    batch = {"writeKey": key, "sentAt": "2030-01-01T01:00:10.000Z", "batch": [
        {"type": "track", "userId": "u-2", "event": "Batched", "messageId": "b-1",
         "timestamp": "2030-01-01T01:00:00.000Z"},
        {"type": "identify", "userId": "u-2", "messageId": "b-2",
         "sentAt": "2030-01-01T01:00:05.000Z", "timestamp": "2030-01-01T01:00:00.000Z"},
    ]}
    assert _post_text(pipeline, "/v1/b", batch).status_code == 200

    events = _raw_events(pipeline, expect=8)
    assert sorted(e["type"] for e in events) == sorted(
        ["track", "identify", "page", "screen", "group", "alias", "track", "identify"])
    by_id = {e["messageId"]: e for e in events}
    batched, own_sent_at = by_id["b-1"], by_id["b-2"]
    assert batched["sentAt"] == "2030-01-01T01:00:10.000Z"
    assert own_sent_at["sentAt"] == "2030-01-01T01:00:05.000Z"
    skew = (_seconds(batched["receivedAt"]) - _seconds(batched["timestamp"]))
    assert abs(skew - 10) < 0.01  # corrected with the batch's sentAt before keeping it
    assert all("writeKey" not in e for e in events)


def _seconds(moment: str) -> float:
    return datetime.fromisoformat(moment).timestamp()


def test_allowed_origins_set_with_the_cli_refuse_other_pages_readably(api) -> None:
    pipeline, _app_id, key = api
    accepted: Counter[str] = Counter()

    def post(origin: str | None) -> requests.Response:
        # The event's name is its origin, to tell afterwards which requests got through.
        response = _post_text(pipeline, "/v1/t", {"userId": "u", "event": str(origin),
                                                  "writeKey": key}, origin=origin)
        if response.status_code == 200:
            accepted[str(origin)] += 1
        return response

    def wait_for(origin: str | None, status: int) -> requests.Response:
        # The write-key cache hears of the change through LISTEN/NOTIFY, not at once.
        deadline = time.monotonic() + 10
        while True:
            response = post(origin)
            if response.status_code == status or time.monotonic() > deadline:
                return response
            time.sleep(0.1)

    assert wait_for("https://elsewhere.example", 200).status_code == 200  # default: any
    changed = cli(pipeline.dsn, "admin", "app", "set-allowed-origins", "shop",
                  "https://SHOP.example:443, https://*.cdn.example")
    assert changed.returncode == 0, changed.stderr
    assert "https://shop.example,https://*.cdn.example" in changed.stdout

    refused = wait_for("https://elsewhere.example", 403)
    assert refused.status_code == 403, refused.text
    assert refused.headers["Access-Control-Allow-Origin"] == "https://elsewhere.example"
    body = refused.json()
    assert body["code"] == "origin_not_allowed"
    assert "https://elsewhere.example" in body["message"]
    assert post(PAGE).status_code == 200
    assert post("https://eu.cdn.example").status_code == 200
    assert post("https://cdn.example").status_code == 403  # the wildcard's parent is not
    assert post(None).status_code == 200  # not a page in a browser
    listed = json.loads(cli(pipeline.dsn, "admin", "app", "list", "--output", "json").stdout)
    assert listed[0]["allowed_origins"] == ["https://shop.example", "https://*.cdn.example"]

    bad = cli(pipeline.dsn, "admin", "app", "set-allowed-origins", "shop", "shop.example/x")
    assert bad.returncode == 2 and "http:// or https://" in bad.stderr

    assert cli(pipeline.dsn, "admin", "app", "set-allowed-origins", "shop",
               "any").returncode == 0
    assert wait_for("https://elsewhere.example", 200).status_code == 200
    # Exactly the accepted requests' events are in Kafka: a refused one left nothing.
    stored = Counter(e["event"] for e in _raw_events(pipeline, expect=sum(accepted.values())))
    assert stored == accepted


def test_app_created_with_allowed_origins(pg_database: str) -> None:
    assert cli(pg_database, "migrate").returncode == 0
    created = cli(pg_database, "admin", "app", "create", "web", "--allowed-origins",
                  "http://localhost:3000", "--output", "json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["allowed_origins"] == ["http://localhost:3000"]
    server_only = cli(pg_database, "admin", "app", "create", "backend", "--allowed-origins",
                      "none")
    assert server_only.returncode == 0, server_only.stderr
    listed = cli(pg_database, "admin", "app", "list").stdout.splitlines()
    assert listed[0].endswith("origins=http://localhost:3000")
    assert listed[1].endswith("origins=none")


def test_identify_with_traits_only_in_context_builds_the_redis_profile(
        pipeline: Pipeline) -> None:
    app_id, key = pipeline.create_app()
    pipeline.create_destination(app_id, "Profiles", "redis", {"key_prefix": "profiles"})
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("redis")

    identify = {"userId": "u-5", "messageId": "i-5", "writeKey": key,
                "context": {"traits": {"email": "ada@example.com", "plan": "pro"}}}
    assert _post_text(pipeline, "/v1/identify", identify).status_code == 200
    client = redis.Redis.from_url(pipeline.redis_url, decode_responses=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not client.exists(f"profiles:{app_id}:profile:u-5"):
        time.sleep(0.2)
    profile = client.hgetall(f"profiles:{app_id}:profile:u-5")
    assert {k: profile.get(k) for k in ("email", "plan")} == {
        "email": '"ada@example.com"', "plan": '"pro"'}
