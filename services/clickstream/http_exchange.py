"""One HTTP request and its answer, as the Event API sees them, and how they cross the
RSGI interface of the server it runs in (granian).

The Event API's logic takes a :class:`Request` and gives a :class:`Response`; only
:func:`serve_rsgi` knows the server, so tests drive the logic without one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from clickstream.refused import Refused


class _Body(Protocol):
    def __aiter__(self) -> AsyncIterator[bytes]: ...


async def _no_body() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


@dataclass
class Request:
    method: str
    path: str
    #: Header names in lower case; of repeated headers the first one.
    headers: Mapping[str, str]
    remote_addr: str | None = None
    scheme: str = "http"
    body_chunks: _Body = field(default_factory=_no_body)

    @property
    def host(self) -> str:
        return self.headers.get("host", "")

    async def body(self, max_bytes: int) -> bytes:
        """The raw body, refused with a 413 as soon as it is over ``max_bytes``: a
        client cannot make the server hold more than that, whatever it declares."""
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise Refused(413, "too_large", f"request body over {max_bytes} bytes")
        chunks, size = [], 0
        async for chunk in self.body_chunks:
            size += len(chunk)
            if size > max_bytes:
                raise Refused(413, "too_large", f"request body over {max_bytes} bytes")
            chunks.append(chunk)
        if length is not None and length.isdigit() and size != int(length):
            # The client went away mid-body: what came may parse, yet it is not what
            # was sent.
            raise Refused(400, "incomplete_body",
                          f"request body has {size} of its {length} bytes")
        return b"".join(chunks)


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/json"

    def header_list(self) -> list[tuple[str, str]]:
        headers = list(self.headers.items())
        if self.content_type:
            headers.append(("content-type", self.content_type))
        return headers


def json_response(body: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    return Response(status, json.dumps(body).encode(), dict(headers or {}))


def _remote_addr(client: str) -> str | None:
    # "ip:port", or "[v6]:port"
    host = client.rpartition(":")[0]
    return host.strip("[]") or None


async def serve_rsgi(scope: Any, proto: Any,
                     respond: Callable[[Request], Awaitable[Response]]) -> None:
    """Answer one RSGI HTTP request with ``respond``."""
    headers: dict[str, str] = {}
    for name, value in scope.headers.items():
        headers.setdefault(name, value)
    request = Request(scope.method, scope.path, headers, _remote_addr(scope.client),
                      scope.scheme, proto)
    response = await respond(request)
    body = b"" if scope.method == "HEAD" else response.body
    proto.response_bytes(response.status, response.header_list(), body)
