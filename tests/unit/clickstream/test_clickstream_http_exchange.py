"""How the Event API reads a request body: never more than its limit, and never a body
cut short by a client that went away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from clickstream.http_exchange import Request
from clickstream.refused import Refused


def _request(chunks: list[bytes], length: int | None) -> Request:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    headers = {} if length is None else {"content-length": str(length)}
    return Request("POST", "/v1/track", headers, body_chunks=body())


def _read(request: Request, limit: int = 100) -> bytes | tuple[int, str]:
    try:
        return asyncio.run(request.body(limit))
    except Refused as refused:
        return refused.status, refused.reason


def test_a_whole_body_is_read() -> None:
    assert _read(_request([b'{"a":', b" 1}"], 8)) == b'{"a": 1}'
    assert _read(_request([b'{"a":', b" 1}"], None)) == b'{"a": 1}'  # chunked


def test_a_body_cut_short_is_refused_though_what_came_is_json() -> None:
    assert _read(_request([b'{"a": 1}'], 50)) == (400, "incomplete_body")


@pytest.mark.parametrize("length", [None, 101, 5])
def test_a_body_over_the_limit_is_refused_whatever_its_length_says(length) -> None:
    assert _read(_request([b"x" * 60, b"x" * 60], length)) == (413, "too_large")
