"""What clients read from the Event API without running it: the paths in the OpenAPI
spec, and the fields of an error body that Segment's libraries parse."""

from clickstream.event_api import error_body
from clickstream.events import SHORT_PATHS, TYPES
from clickstream.openapi import build_spec


def test_spec_has_the_short_paths_beside_the_long_ones() -> None:
    paths = build_spec()["paths"]
    assert {f"/v1/{short}" for short in "tipsgab"} <= set(paths)
    for short, name in SHORT_PATHS.items():
        assert paths[f"/v1/{short}"]["post"]["requestBody"] == (
            paths[f"/v1/{name}"]["post"]["requestBody"])
    assert paths["/v1/b"]["post"]["requestBody"] == paths["/v1/batch"]["post"]["requestBody"]
    assert set(SHORT_PATHS.values()) == set(TYPES)


def test_spec_documents_code_message_and_the_origin_refusal() -> None:
    spec = build_spec()
    error = spec["components"]["schemas"]["Error"]
    assert {"success", "error", "code", "message"} <= set(error["required"])
    assert "403" in spec["paths"]["/v1/t"]["post"]["responses"]


def test_error_body_keeps_our_fields_and_adds_what_sdks_read() -> None:
    body = error_body("invalid_event", "invalid events in batch",
                      [{"index": i, "error": "x"} for i in range(150)])
    assert body["success"] is False
    assert body["error"] == body["message"] == "invalid events in batch"
    assert body["code"] == "invalid_event"
    assert len(body["errors"]) == 100
    assert "errors" not in error_body("unknown_write_key", "unknown write key")
