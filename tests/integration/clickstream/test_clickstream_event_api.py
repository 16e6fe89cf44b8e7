"""The Event API against real Kafka and Postgres: what it accepts, what it refuses
(with which status), and that a refused request leaves nothing behind."""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
import zlib
from collections import Counter

import pytest
import requests
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import openapi
from schemathesis.generation import GenerationMode

from clickstream import storage
from clickstream.partitioner import partition_for
from tests.integration.clickstream.pipeline import Pipeline


@pytest.fixture
def api(pipeline: Pipeline) -> tuple[Pipeline, int, str]:
    app_id, key = pipeline.create_app()
    pipeline.event_api()
    return pipeline, app_id, key


def _raw(pipeline: Pipeline, expect: int | None = None) -> list:
    return pipeline.read_topic(f"{pipeline.prefix}.raw", expect=expect, timeout=15)


def test_bad_input_gets_its_status_and_leaves_nothing_behind(api) -> None:
    pipeline, _app_id, key = api
    url = pipeline.api_url
    track = {"userId": "u-1", "event": "Clicked"}

    def post(path: str, data: bytes, auth: tuple[str, str] | None = (key, ""),
             **headers: str) -> requests.Response:
        return requests.post(url + path, data=data, auth=auth, timeout=30,
                             headers={"Content-Type": "application/json", **headers})

    cases = {
        "malformed JSON": (post("/v1/track", b'{"userId": "u-1", "event": '), 400),
        "not an object": (post("/v1/track", b'["a"]'), 400),
        "userId of the wrong type": (post("/v1/track", b'{"userId": {}, "event": "x"}'), 400),
        "properties of the wrong type": (
            post("/v1/track", json.dumps({**track, "properties": "x"}).encode()), 400),
        "timestamp not a time": (
            post("/v1/track", json.dumps({**track, "timestamp": "yesterday"}).encode()), 400),
        "missing ids": (post("/v1/track", b'{"event": "Clicked"}'), 400),
        "track without event": (post("/v1/track", b'{"userId": "u-1"}'), 400),
        "batch item of unknown type": (
            post("/v1/batch", json.dumps({"batch": [{**track, "type": "nope"}]}).encode()), 400),
        "batch not an array": (post("/v1/batch", b'{"batch": {}}'), 400),
        "bad gzip": (post("/v1/track", b"not gzip", **{"Content-Encoding": "gzip"}), 400),
        "unknown write key": (post("/v1/track", json.dumps(track).encode(), ("nope", "")), 401),
        "no write key": (post("/v1/track", json.dumps(track).encode(), None), 401),
        "oversize event": (post("/v1/track", json.dumps(
            {**track, "properties": {"blob": "x" * 33_000}}).encode()), 413),
        "oversize event in a batch": (post("/v1/batch", json.dumps({"batch": [
            {**track, "type": "track", "properties": {"blob": "x" * 33_000}}]}).encode()), 413),
        "oversize batch": (post("/v1/batch", json.dumps({"batch": [
            {**track, "type": "track", "properties": {"blob": "x" * 20_000}}
            for _ in range(30)]}).encode()), 413),
        "2,501-event batch": (post("/v1/batch", json.dumps({"batch": [
            {"type": "track", "userId": "u", "event": "e"}] * 2501}).encode()), 413),
        "zip bomb": (post("/v1/batch", gzip.compress(b'{"batch": ["' + b"x" * 5_000_000 + b'"]}'),
                          **{"Content-Encoding": "gzip"}), 413),
    }
    wrong = {name: (r.status_code, r.text[:200]) for name, (r, status) in cases.items()
             if r.status_code != status}
    assert wrong == {}
    for name, (response, _status) in cases.items():
        body = response.json()
        assert body["success"] is False and body["error"], name
    # One bad event spoils the whole batch, and says which one.
    mixed = post("/v1/batch", json.dumps({"batch": [
        {**track, "type": "track"}, {"type": "track", "event": "no ids"}]}).encode())
    assert mixed.status_code == 400
    assert mixed.json()["errors"] == [{"index": 1, "error": "userId or anonymousId is required"}]

    # The largest batch allowed goes through.
    full = {"batch": [{"type": "track", "userId": f"u-{i}", "event": "e"} for i in range(2500)]}
    assert post("/v1/batch", json.dumps(full).encode()).status_code == 200
    assert len(_raw(pipeline, expect=2500)) == 2500  # nothing from the refused requests


def test_accepted_events_are_enriched_keyed_and_partitioned_like_java(api) -> None:
    pipeline, app_id, key = api
    sent = [
        pipeline.post("/v1/identify", {"userId": "user-1", "traits": {"a": 1},
                                       "messageId": "given-id"}, key),
        pipeline.post("/v1/page", {"anonymousId": "anon-8d7f", "name": "Home",
                                   "writeKey": key}, None),
        requests.post(pipeline.api_url + "/v1/batch", auth=(key, ""), timeout=30,
                      data=gzip.compress(json.dumps({"batch": [
                          {"type": "screen", "userId": "user-1", "name": "Cart"},
                          {"type": "group", "userId": "user-1", "groupId": "g-1"},
                          {"type": "alias", "userId": "user-1", "previousId": "anon-8d7f"},
                      ], "context": {"app": {"version": "2"}}}).encode()),
                      headers={"Content-Encoding": "gzip", "Content-Type": "application/json",
                               "X-Forwarded-For": "203.0.113.9, 10.0.0.1"}),
        pipeline.post("/v1/import", {"batch": [
            {"type": "track", "userId": "user-1", "event": "Old",
             "timestamp": "2020-01-01T00:00:00Z", "sentAt": "2020-01-01T00:00:09Z"}]}, key),
    ]
    assert [r.status_code for r in sent] == [200] * 4
    messages = _raw(pipeline, expect=6)
    assert len(messages) == 6
    events = {}
    for message in messages:
        event = json.loads(message.value())
        events[event["type"]] = event
        assert message.key() == (event.get("userId") or event["anonymousId"]).encode()
        assert message.partition() == partition_for(message.key(), 4)
        assert dict(message.headers())["app_id"] == str(app_id).encode()
        assert "writeKey" not in event
        assert event["messageId"] and event["receivedAt"] and event["timestamp"]
    assert events["identify"]["messageId"] == "given-id"
    assert events["page"]["context"]["ip"] == "127.0.0.1"
    assert events["screen"]["context"] == {"app": {"version": "2"}, "ip": "203.0.113.9"}
    assert events["track"]["timestamp"] == "2020-01-01T00:00:00.000Z"  # import: as sent


def test_rate_limit_answers_429_with_retry_after(pipeline: Pipeline) -> None:
    _app_id, key = pipeline.create_app(rate_limit=5)
    pipeline.event_api()
    batch = {"batch": [{"type": "track", "userId": "u", "event": "e"}] * 5}
    assert pipeline.post("/v1/batch", batch, key).status_code == 200
    limited = pipeline.post("/v1/batch", batch, key)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    time.sleep(int(limited.headers["Retry-After"]))
    assert pipeline.post("/v1/batch", batch, key).status_code == 200


def test_key_rotation_takes_effect_at_once(api) -> None:
    pipeline, app_id, old_key = api
    event = {"userId": "u", "event": "e"}
    assert pipeline.post("/v1/track", event, old_key).status_code == 200  # now cached
    with pipeline.connect() as conn:
        new_key = storage.add_write_key(conn, app_id)
        (old_id,) = [k.id for k in storage.list_write_keys(conn, app_id)
                     if old_key.startswith(k.key_prefix)]
        storage.revoke_write_key(conn, old_id)
    deadline = time.monotonic() + 5
    while pipeline.post("/v1/track", event, old_key).status_code != 401:
        assert time.monotonic() < deadline, "revoked key still accepted"
        time.sleep(0.1)
    assert pipeline.post("/v1/track", event, new_key).status_code == 200


def test_health_ready_spec_and_metrics(api) -> None:
    pipeline, _app_id, key = api
    assert requests.get(pipeline.api_url + "/health", timeout=5).status_code == 200
    assert requests.get(pipeline.api_url + "/ready", timeout=5).status_code == 200
    spec = requests.get(pipeline.api_url + "/openapi.json", timeout=5).json()
    assert set(spec["paths"]) >= {"/v1/track", "/v1/batch", "/v1/import"}
    pipeline.post("/v1/track", {"userId": "u", "event": "e"}, key)
    pipeline.post("/v1/track", {"userId": "u", "event": "e"}, "unknown")
    text = requests.get(pipeline.api_url + "/metrics", timeout=5).text
    assert "clickstream_events_produced_total 1.0" in text
    assert 'clickstream_events_rejected_total{reason="unknown_write_key"} 1.0' in text
    # Summed over the gunicorn workers, whichever answered (the 200s include the
    # readiness checks of the start, hence no exact count).
    assert 'clickstream_http_responses_total{code="200"}' in text
    assert 'clickstream_http_responses_total{code="401"} 1.0' in text


def test_segment_python_library_delivers_its_events(api) -> None:
    from segment.analytics import Client

    pipeline, _app_id, key = api
    errors: list[Exception] = []
    for compress in (False, True):
        client = Client(key, host=pipeline.api_url, gzip=compress,
                        on_error=lambda error, _batch: errors.append(error), max_retries=1)
        client.identify("user-7", {"email": "x@example.com"})
        client.track("user-7", "Signed Up", {"plan": "pro"})
        client.page("user-7", "Docs", "Install", {"path": "/install"})
        client.screen("user-7", "App", "Home")
        client.group("user-7", "org-1", {"name": "Org"})
        client.alias("anon-1", "user-7")
        client.flush()
        client.shutdown()
    assert errors == []
    messages = _raw(pipeline, expect=12)
    types = sorted(json.loads(m.value())["type"] for m in messages)
    assert types == sorted(["identify", "track", "page", "screen", "group", "alias"] * 2)
    library = {json.loads(m.value())["context"]["library"]["name"] for m in messages}
    assert library == {"analytics-python"}


def test_schemathesis_finds_no_server_error(api) -> None:
    pipeline, _app_id, key = api
    schema = openapi.from_url(pipeline.api_url + "/openapi.json")
    seen: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        # What the spec says this operation answers (any path may be 413 or 429); never a
        # server error, as Kafka, Postgres and Redis are up throughout.
        documented = ({int(code) for code in operation.definition.raw["responses"]}
                      | {413, 429}) - {500, 502, 503}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=30, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case) -> None:
                response = case.call(base_url=pipeline.api_url, auth=(key, ""), timeout=30)
                seen[response.status_code] = seen.get(response.status_code, 0) + 1
                assert response.status_code in documented, (  # noqa: B023 (run at once)
                    f"{case.method} {case.path} -> {response.status_code}: "
                    f"{response.text[:300]}")

            try:
                check()
            except Unsatisfiable:
                # No invalid request exists for an operation without a body whose only
                # parameters are free strings (the tracker settings' write key).
                assert mode is GenerationMode.NEGATIVE and not operation.body
    assert seen.get(200) and seen.get(400)


def strict_json(value: bytes) -> object:
    """``value`` read as a strict RFC 8259 consumer reads it: UTF-8, no NaN or Infinity,
    no lone surrogate, nothing a double cannot hold."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    def finite(text: str) -> float:
        number = float(text)
        assert number not in (float("inf"), float("-inf")), text
        return number

    parsed = json.loads(value.decode("utf-8"), parse_constant=refuse, parse_float=finite)
    json.dumps(parsed, ensure_ascii=False).encode("utf-8")  # no lone surrogate in it
    return parsed


def test_hostile_bodies_get_a_4xx_with_a_reason_never_a_500(api) -> None:
    pipeline, _app_id, key = api
    url = pipeline.api_url
    event = b'{"userId": "u", "event": "e"}'
    cases = {
        # Before authentication: these answered 500 with a traceback.
        "32 KB of [": ("/v1/track", b"[" * 32_000, None, {}, 400),
        "32 KB of [ in a batch": ("/v1/batch", b'{"batch": ' + b"[" * 32_000, None, {}, 400),
        "nested 65 levels": ("/v1/track", b'{"userId": "u", "event": "e", "properties": '
                             + b'{"a": ' * 64 + b"1" + b"}" * 65, (key, ""), {}, 400),
        "NaN": ("/v1/track", b'{"userId": "u", "event": "e", "properties": {"a": NaN}}',
                (key, ""), {}, 400),
        "1e999": ("/v1/track", b'{"userId": "u", "event": "e", "properties": {"a": 1e999}}',
                  (key, ""), {}, 400),
        "surrogate write key": ("/v1/track", b'{"userId": "u", "event": "e", '
                                b'"writeKey": "\\ud800"}', None, {}, 401),
        "invalid UTF-8": ("/v1/track", b'{"userId": "\xff", "event": "e"}', (key, ""), {}, 400),
        "unknown coding": ("/v1/track", event, (key, ""), {"Content-Encoding": "br"}, 415),
        "gzip with trailing garbage": ("/v1/track", gzip.compress(event) + b"\0\0",
                                       (key, ""), {"Content-Encoding": "gzip"}, 400),
    }
    wrong = {}
    for name, (path, data, auth, headers, status) in cases.items():
        response = requests.post(url + path, data=data, auth=auth, timeout=30, headers=headers)
        body = response.json()
        if response.status_code != status or not body["code"] or not body["message"]:
            wrong[name] = (response.status_code, response.text[:200])
    assert wrong == {}
    assert _raw(pipeline) == []


def test_odd_but_valid_json_is_stored_as_strict_json(api) -> None:
    pipeline, _app_id, key = api
    url = pipeline.api_url

    def post(path: str, data: bytes, **headers: str) -> requests.Response:
        return requests.post(url + path, data=data, auth=(key, ""), timeout=30, headers=headers)

    sent = [
        # A lone surrogate (JavaScript's view of an emoji cut in half): this was a 500.
        post("/v1/track", rb'{"userId": "u\ud800", "event": "\udc00cut", '
                          rb'"properties": {"\ud83d": "\ud83d\ude00"}}'),
        # Two gzip members: the second was dropped without a word.
        post("/v1/batch", gzip.compress(b'{"batch": [{"type": "track", "userId": "u", '
                                        b'"event": "first"},')
             + gzip.compress(b'{"type": "track", "userId": "u", "event": "second"}]}'),
             **{"Content-Encoding": "gzip"}),
        post("/v1/track", zlib.compress(b'{"userId": "u", "event": "deflated", '
                                       b'"properties": {"big": 18446744073709551616, '
                                       b'"dup": 1, "dup": 2}}'),
             **{"Content-Encoding": "deflate"}),
    ]
    assert [r.status_code for r in sent] == [200, 200, 200], [r.text for r in sent]
    events = {}
    for message in _raw(pipeline, expect=4):
        parsed = strict_json(message.value())
        events[parsed["event"]] = parsed
    assert set(events) == {"\ufffdcut", "first", "second", "deflated"}
    cut = events["\ufffdcut"]
    assert cut["userId"] == "u\ufffd" and cut["properties"] == {"\ufffd": "\U0001F600"}
    assert events["deflated"]["properties"] == {"big": 1.8446744073709552e19, "dup": 2}


def test_a_batch_retried_after_a_partial_503_yields_only_recognisable_duplicates(
        pipeline: Pipeline) -> None:
    """The raw topic refuses messages over 8 KB: of a batch with a small and a large
    event for different partitions, Kafka stores the small one and refuses the other, the
    client is answered 503 and retries. Every copy of an event must carry the same
    messageId, although the client sent none."""
    _app_id, key = pipeline.create_app()
    raw = f"{pipeline.prefix}.raw"
    admin = AdminClient({"bootstrap.servers": pipeline.bootstrap})
    admin.create_topics([NewTopic(raw, 4, 1, config={"max.message.bytes": "8192"})])[raw] \
        .result(30)
    pipeline.event_api()
    small_user, large_user = "u-small", next(
        f"u-{n}" for n in range(100)
        if partition_for(f"u-{n}".encode(), 4) != partition_for(b"u-small", 4))
    # Random, so that compression cannot bring it under the topic's limit.
    blob = base64.b64encode(os.urandom(12_000)).decode()
    body = json.dumps({"batch": [
        {"type": "track", "userId": small_user, "event": "small"},
        {"type": "track", "userId": large_user, "event": "large", "properties": {"b": blob}},
    ]}).encode()

    def post() -> requests.Response:
        return requests.post(pipeline.api_url + "/v1/batch", data=body, auth=(key, ""),
                             timeout=30)

    refused = post()
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    partial = _raw(pipeline, expect=1)
    assert [strict_json(m.value())["event"] for m in partial] == ["small"]

    resource = ConfigResource("topic", raw, incremental_configs=[ConfigEntry(
        "max.message.bytes", "1048588", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(30)
    deadline = time.monotonic() + 30
    while (retried := post()).status_code == 503:  # until the broker applies the change
        assert time.monotonic() < deadline, retried.text
    assert retried.status_code == 200
    copies: dict[str, Counter[str]] = {}
    for message in _raw(pipeline):
        event = strict_json(message.value())
        copies.setdefault(event["event"], Counter())[event["messageId"]] += 1
    assert set(copies) == {"small", "large"}
    assert len(copies["small"]) == 1 and copies["small"].total() >= 2  # one id, copies
    assert len(copies["large"]) == 1
    assert copies["small"].keys() != copies["large"].keys()
