"""The settings document analytics.js loads at start (GET /v1/projects/{writeKey}/settings),
served by the Event API with a stand-in for its key store: events go to the host the
request came to and nowhere else; unknown keys and refused origins get our error body;
CORS on every answer."""

from __future__ import annotations

from typing import Any

import pytest

from clickstream.event_api import EventApi, tracker_settings
from clickstream.openapi import build_spec
from clickstream.storage import App
from clickstream.write_keys import KeyStoreUnavailable
from tests.unit.clickstream.event_api_client import EventApiClient

KEY = "wk_live_0123456789"


class Keys:
    def __init__(self, apps: dict[str, App], down: bool = False) -> None:
        self.apps = apps
        self.down = down
        self.asked: list[str] = []

    async def find(self, key: str) -> App | None:
        self.asked.append(key)
        if self.down:
            raise KeyStoreUnavailable("connection refused")
        return self.apps.get(key)


class Ingest:
    def __init__(self, keys: Keys) -> None:
        self.keys = keys


def client(keys: Keys) -> EventApiClient:
    return EventApiClient(EventApi(ingest=Ingest(keys)))  # type: ignore[arg-type]


@pytest.fixture
def keys() -> Keys:
    return Keys({KEY: App(1, "shop", None),
                 "wk_strict": App(2, "strict", None, ("https://shop.example",))})


def test_the_document_sends_events_here_and_runs_nothing_else() -> None:
    settings = tracker_settings(KEY, "http", "10.0.0.5:8080")
    assert settings["integrations"] == {"Segment.io": {
        "apiKey": KEY, "apiHost": "10.0.0.5:8080/v1", "protocol": "http"}}
    assert settings["metrics"]["sampleRate"] == 0  # its usage metrics go to api.segment.io
    assert settings["remotePlugins"] == []
    assert settings["enabledMiddleware"] == {} and settings["middlewareSettings"] == {}
    assert settings["legacyVideoPluginsEnabled"] is False
    assert "segment.com" not in repr(settings) and "api.segment.io" not in repr(settings)


def test_settings_name_the_host_and_protocol_the_request_came_by(keys: Keys) -> None:
    answer = client(keys).get(f"/v1/projects/{KEY}/settings", headers={
        "Host": "data.example:8443", "X-Forwarded-Proto": "https",
        "Origin": "https://shop.example"})
    assert answer.status_code == 200
    segment = answer.get_json()["integrations"]["Segment.io"]
    assert segment == {"apiKey": KEY, "apiHost": "data.example:8443/v1", "protocol": "https"}
    assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Origin" in answer.headers["Vary"]
    assert answer.headers["Cache-Control"].startswith("private, max-age=")
    assert keys.asked == [KEY]


def test_without_a_forwarded_protocol_the_requests_own_is_used(keys: Keys) -> None:
    answer = client(keys).get(f"/v1/projects/{KEY}/settings", headers={
        "Host": "127.0.0.1:8080", "X-Forwarded-Host": "evil.example"})
    segment = answer.get_json()["integrations"]["Segment.io"]
    # X-Forwarded-Host is the client's own (the gateway does not set it): ignored.
    assert (segment["apiHost"], segment["protocol"]) == ("127.0.0.1:8080/v1", "http")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_an_unknown_key_is_404_with_our_error_body_and_cors(keys: Keys) -> None:
    answer = client(keys).get("/v1/projects/nope/settings",
                              headers={"Origin": "http://localhost:3000"})
    assert answer.status_code == 404
    body: dict[str, Any] = answer.get_json()
    assert body == {"success": False, "error": "unknown write key", "code": "unknown_write_key",
                    "message": "unknown write key"}
    assert answer.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


def test_an_origin_the_app_does_not_allow_is_refused_readably(keys: Keys) -> None:
    app = client(keys)
    refused = app.get("/v1/projects/wk_strict/settings", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "origin_not_allowed"
    assert refused.headers["Access-Control-Allow-Origin"] == "https://evil.example"
    allowed = app.get("/v1/projects/wk_strict/settings", headers={"Origin": "https://shop.example"})
    assert allowed.status_code == 200


def test_an_unavailable_key_store_is_a_retryable_503() -> None:
    answer = client(Keys({}, down=True)).get(f"/v1/projects/{KEY}/settings")
    assert answer.status_code == 503
    assert answer.get_json()["code"] == "unavailable"
    assert answer.headers["Retry-After"]
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_only_get_and_the_preflight_are_answered(keys: Keys) -> None:
    app = client(keys)
    assert app.post(f"/v1/projects/{KEY}/settings").status_code == 405
    preflight = app.options(f"/v1/projects/{KEY}/settings", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]


def test_the_spec_documents_the_settings_path() -> None:
    operation = build_spec()["paths"]["/v1/projects/{writeKey}/settings"]["get"]
    assert set(operation["responses"]) == {"200", "403", "404", "503"}
