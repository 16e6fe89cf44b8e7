"""A bounded load generator for fault tests: threads posting batches to the Event API,
recording which messageIds were answered 200 and which were refused, and how."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import requests


class Load:
    def __init__(self, api_url: str, key: str, threads: int = 4, batch: int = 10,
                 users: int = 20, pause: float = 0.01, max_seconds: float = 120) -> None:
        self.api_url = api_url
        self.key = key
        self.batch = batch
        self.users = users
        self.pause = pause
        self.max_seconds = max_seconds
        self.accepted: set[str] = set()
        self.refused: set[str] = set()
        self.statuses: Counter[int | str] = Counter()
        #: The batches refused, as sent, for a client's retry; and one refusal's answer.
        self.refused_batches: list[list[dict]] = []
        self.refusal: requests.Response | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                         for n in range(threads)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, n: int) -> None:
        session = requests.Session()
        seq = 0
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            events = []
            for _ in range(self.batch):
                seq += 1
                events.append({"type": "track", "event": "Load",
                               "userId": f"user-{(n * 7 + seq) % self.users}",
                               "messageId": str(uuid.uuid4()),
                               "properties": {"thread": n, "seq": seq}})
            ids = {e["messageId"] for e in events}
            response = None
            try:
                response = session.post(self.api_url + "/v1/batch", json={"batch": events},
                                        auth=(self.key, ""), timeout=30)
                status: int | str = response.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            with self._lock:
                self.statuses[status] += 1
                (self.accepted if status == 200 else self.refused).update(ids)
                if status != 200:
                    self.refused_batches.append(events)
                    if response is not None:
                        self.refusal = response
            time.sleep(self.pause)
