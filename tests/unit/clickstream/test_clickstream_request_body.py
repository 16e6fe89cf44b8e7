"""What the Event API makes of a request body before it looks at events: content
codings undone, JSON read strictly, so that what it stores any consumer can parse."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickstream.events import derived_message_id, prepare_event
from clickstream.refused import Refused
from clickstream.request_body import (
    MAX_JSON_DEPTH,
    decode_body,
    parse_json,
    parse_json_slowly,
)

LIMIT = 32 * 1024


def gzipped(data: bytes) -> bytes:
    # No timestamp in the header: the bodies are test ids, which every worker of a
    # parallel run must collect alike.
    return gzip.compress(data, mtime=0)


def refusal(call, *args) -> tuple[int, str]:
    with pytest.raises(Refused) as caught:
        call(*args)
    assert caught.value.message
    return caught.value.status, caught.value.reason


def test_every_gzip_member_is_read() -> None:
    body = gzipped(b'{"batch": [{"a": 1},') + gzipped(b' {"b": 2}]}')
    assert decode_body(body, "gzip", LIMIT) == b'{"batch": [{"a": 1}, {"b": 2}]}'


@pytest.mark.parametrize(("body", "encoding", "expected"), [
    (gzipped(b"x" * (LIMIT + 1)), "gzip", (413, "too_large")),
    # The limit is on the whole body, not per member.
    (gzipped(b"x" * LIMIT) + gzipped(b"x"), "gzip", (413, "too_large")),
    (gzipped(b"{}")[:-4], "gzip", (400, "invalid_gzip")),
    (gzipped(b"{}") + b"trailing", "gzip", (400, "invalid_gzip")),
    (b"not gzip", "gzip", (400, "invalid_gzip")),
    (b"", "gzip", (400, "invalid_gzip")),
    (zlib.compress(b"{}") + b"more", "deflate", (400, "invalid_deflate")),
    (b"{}", "br", (415, "unsupported_encoding")),
    (b"{}", "gzip, zstd", (415, "unsupported_encoding")),
])
def test_bodies_that_are_not_what_their_coding_says_are_refused(body, encoding,
                                                               expected) -> None:
    assert refusal(decode_body, body, encoding, LIMIT) == expected


@pytest.mark.parametrize(("body", "encoding"), [
    (b"{}", ""), (b"{}", "identity"), (gzipped(b"{}"), "x-gzip"),
    (gzipped(b"{}"), "GZIP"), (zlib.compress(b"{}"), "deflate"),
    (zlib.compress(b"{}")[2:-4], "deflate"),  # raw deflate, as some clients send it
    (gzipped(zlib.compress(b"{}")), "deflate, gzip"),
])
def test_supported_codings(body, encoding) -> None:
    assert decode_body(body, encoding, LIMIT) == b"{}"


def test_lone_surrogate_escapes_become_the_replacement_character() -> None:
    body = rb'{"a": "x\ud800y", "\udfff": ["\ud83d"], "emoji": "\ud83d\ude00"}'
    value = parse_json(body)
    assert value == {"a": "x\ufffdy", "\ufffd": ["\ufffd"], "emoji": "\U0001F600"}
    json.dumps(value, ensure_ascii=False).encode()  # storable as UTF-8


def test_an_escaped_backslash_before_u_is_not_a_surrogate() -> None:
    assert parse_json(rb'{"a": "\\ud800"}') == {"a": "\\ud800"}


@pytest.mark.parametrize("body", [
    b"[" * 32_000, b'{"a":' * 20_000, b"[" * MAX_JSON_DEPTH + b"[]" + b"]" * MAX_JSON_DEPTH,
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e999}',
    b'{"a": -1e400}', b'{"a": ' + b"9" * 5000 + b"}", b'{"a": "\xff"}', b'{"a": "\xed\xa0\x80"}',
    '{"a": 1}'.encode("utf-16"), b"\xef\xbb\xbf{}", b'{"a": 1', b"",
])
def test_what_is_not_strict_json_is_refused_with_400(body) -> None:
    assert refusal(parse_json, body) == (400, "invalid_json")


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = MAX_JSON_DEPTH
    value = parse_json(b"[" * depth + b"]" * depth)
    for _ in range(depth - 1):
        (value,) = value
    assert value == []


def test_numbers_are_read_as_a_javascript_consumer_would() -> None:
    assert parse_json(b"[9223372036854775807, -9223372036854775808, 9223372036854775808,"
                      b" 1e308, 0.1]") == [2**63 - 1, -(2**63), 9.223372036854776e18, 1e308, 0.1]


def test_of_duplicate_keys_the_last_counts() -> None:
    assert parse_json(b'{"a": 1, "a": 2}') == {"a": 2}


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


def _outcome(parse, body: bytes) -> tuple[str, object]:
    try:
        return "value", parse(body)
    except Refused as refused:
        return "refused", (refused.status, refused.reason)


@given(_JSON, st.booleans())
def test_the_fast_reader_reads_every_document_as_the_reference_does(value, ascii_only) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    fast, slow = _outcome(parse_json, body), _outcome(parse_json_slowly, body)
    assert fast == slow
    if fast[0] == "value":  # equal, and of the same types (1 is not 1.0, 2**63 a float)
        assert json.dumps(fast[1]) == json.dumps(slow[1])


@pytest.mark.parametrize("body", [
    b'{"a": "\\ud800"}', b'["\\udc00x"]', b"[18446744073709551615]", b"[9223372036854775808]",
    b"[" * 70 + b"]" * 70, b"[" * 2000 + b"]" * 2000, b'{"a": 1e400}', b"\xef\xbb\xbf{}",
])
def test_the_fast_reader_hands_what_it_reads_otherwise_to_the_reference(body) -> None:
    assert _outcome(parse_json, body) == _outcome(parse_json_slowly, body)


RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def _prepared_id(event: dict, scope: str = "app:1", index: int = 0, **kwargs) -> str:
    return prepare_event(dict(event), "track", RECEIVED, "192.0.2.1", id_scope=scope,
                         index=index, **kwargs)["messageId"]


def test_a_missing_message_id_is_the_same_for_the_same_request() -> None:
    event = {"userId": "u", "event": "Clicked", "properties": {"b": 1, "a": [1, 2]}}
    first = _prepared_id(event)
    assert len(first) == 36
    # The same event sent again, even re-serialized with other key order, a renewed
    # sentAt, its write key in the body, or received later.
    again = {"properties": {"a": [1, 2], "b": 1}, "event": "Clicked", "userId": "u",
             "sentAt": "2024-05-01T12:00:05Z", "writeKey": "k"}
    assert _prepared_id(again) == first
    assert prepare_event(dict(event), "track", datetime(2025, 1, 1, tzinfo=timezone.utc),
                         None, id_scope="app:1")["messageId"] == first
    # Other app, position in the batch or content: another event.
    assert len({first, _prepared_id(event, scope="app:2"), _prepared_id(event, index=1),
                _prepared_id({**event, "event": "Other"})}) == 4


def test_a_given_message_id_is_kept() -> None:
    assert _prepared_id({"userId": "u", "event": "e", "messageId": "mine"}) == "mine"


def test_the_derivation_is_fixed() -> None:
    # Changing it would give a retry sent across an upgrade new ids: duplicates.
    assert derived_message_id("app:1", 0, {"event": "e", "userId": "u", "type": "track"}) \
        == "a4b637a6-d8fd-55ee-baea-51f8e293b9a2"
