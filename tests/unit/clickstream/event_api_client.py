"""Requests to the Event API's logic without a server: what the unit tests use in
place of HTTP (the integration tests run the real server)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from clickstream.event_api import EventApi
from clickstream.http_exchange import Request


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]
    body: bytes

    def get_json(self) -> Any:
        return json.loads(self.body)


class EventApiClient:
    def __init__(self, app: EventApi) -> None:
        self.app = app

    def request(self, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        request = Request(method, path, lowered, remote_addr="127.0.0.1")
        # A loop of its own in a thread of its own: the test process may have one
        # running already (the browser tests' driver leaves one).
        with ThreadPoolExecutor(1) as thread:
            response = thread.submit(asyncio.run, self.app.respond(request)).result()
        return Answer(response.status, dict(response.header_list()), response.body)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers)

    def post(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("POST", path, headers)

    def options(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("OPTIONS", path, headers)
