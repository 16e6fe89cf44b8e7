"""Objects of one kind in a namespace, followed as the API server changes them: a LIST, then
a WATCH from its resourceVersion, kept in a cache that health gates wait on (an informer,
as client-go's, without its machinery).

A gate then passes the moment the status that makes it pass is written, instead of at the
next poll. A watch the server ends (its timeout) is renewed from the last resourceVersion; one
whose resourceVersion expired (410 Gone) is listed anew; one whose server went away is
retried until `reconnect_seconds` without it, and then every gate waiting on it fails with
KubernetesUnreachable rather than hang.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import urllib3.exceptions
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from heliostat.drivers.kubernetes_api import api_error
from heliostat.drivers.kubernetes_errors import KubernetesError, KubernetesUnreachable

WATCH_SECONDS = 60  # one watch request's timeout on the server; then it is renewed
READ_TIMEOUT = WATCH_SECONDS + 15  # a silent connection longer than that is a dead one
CONNECT_TIMEOUT = 10
RECONNECT_SECONDS = 30.0  # without the API server, after which waiting gates fail
RETRY_SECONDS = (0.1, 0.2, 0.5, 1.0)  # between attempts to reach it again, then every 1 s
GONE = 410

T = TypeVar("T")


class _Expired(Exception):
    """The resourceVersion to watch from is too old for the server: list anew."""


class KindWatch:
    """The objects of one kind in one namespace, by name, as the API server last said.

    `objects` and `deleted` (the uids of objects seen deleted) change under `changed`,
    which is notified on every change; read them holding it.
    """

    def __init__(self, api: client.ApiClient, path: str, api_version: str, kind: str,
                 changed: threading.Condition, reconnect_seconds: float) -> None:
        self._api = api
        self._path = path
        self.api_version = api_version
        self.kind = kind
        self.changed = changed
        self.reconnect_seconds = reconnect_seconds
        self.objects: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self.synced = False  # listed at least once
        self.error: KubernetesError | None = None  # set once it gave up
        self._stopped = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"heliostat-watch-{kind.lower()}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        response = self._response
        if response is not None:
            # Wakes the thread blocked reading the stream.
            response.shutdown() if hasattr(response, "shutdown") else response.close()

    @property
    def alive(self) -> bool:
        return self.error is None and not self._stopped.is_set()

    # -- the watch thread ------------------------------------------------------------------

    def _run(self) -> None:
        version: str | None = None
        down_since: float | None = None
        attempt = 0
        while not self._stopped.is_set():
            try:
                if version is None:
                    version = self._list()
                for seen in self._watch(version):
                    version, down_since, attempt = seen or version, None, 0
            except _Expired:
                version = None
            except ApiException as error:
                if error.status == GONE:
                    version = None
                elif error.status in (0, 429, 500, 502, 503, 504):  # TLS cut, starting, overloaded
                    down_since, attempt = self._retry(down_since, attempt, error)
                else:
                    self._fail(KubernetesError(
                        f"cannot watch {self.kind} objects at {self._path}: the API server "
                        f"answered {error.status}: {api_error(error)}"))
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
                if self._stopped.is_set():
                    return
                down_since, attempt = self._retry(down_since, attempt, error)
            if self.error is not None:
                return

    def _retry(self, down_since: float | None, attempt: int,
               error: Exception) -> tuple[float | None, int]:
        now = time.monotonic()
        down_since = now if down_since is None else down_since
        if now - down_since >= self.reconnect_seconds:
            self._fail(KubernetesUnreachable(
                f"the Kubernetes API server at {self._api.configuration.host} went away while "
                f"heliostat was following {self.kind} objects, and has not answered for "
                f"{self.reconnect_seconds:.0f}s: {error}"))
            return down_since, attempt
        self._stopped.wait(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
        return down_since, attempt + 1

    def _fail(self, error: KubernetesError) -> None:
        with self.changed:
            self.error = error
            self.changed.notify_all()

    def _list(self) -> str:
        answer = self._api.call_api(
            self._path, "GET", query_params=[], header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"], response_type="object",
            _return_http_data_only=True, _request_timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        listed = {}
        for item in answer.get("items") or []:
            item.setdefault("apiVersion", self.api_version)
            item.setdefault("kind", self.kind)
            listed[item["metadata"]["name"]] = item
        with self.changed:
            gone = {_uid(o) for o in self.objects.values()} - {_uid(o) for o in listed.values()}
            self.deleted |= gone
            self.objects = listed
            self.synced = True
            self.changed.notify_all()
        return str(answer["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> Iterator[str]:
        """Apply the events of one watch request to the cache; yields each resourceVersion."""
        query = [("watch", "true"), ("resourceVersion", version),
                 ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(WATCH_SECONDS))]
        response = self._api.call_api(
            self._path, "GET", query_params=query, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"], _preload_content=False,
            _return_http_data_only=True, _request_timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        self._response = response
        try:
            if self._stopped.is_set():
                return
            for line in _lines(response):
                event = json.loads(line)
                yield self._apply(event)
        finally:
            self._response = None
            response.release_conn()

    def _apply(self, event: dict[str, Any]) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == GONE:
                raise _Expired()
            raise ValueError(f"watch error: {obj.get('message') or obj}")
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind == "BOOKMARK":
            return version
        name = obj["metadata"]["name"]
        with self.changed:
            if kind == "DELETED":
                if _uid(self.objects.get(name)) == _uid(obj):
                    del self.objects[name]
                self.deleted.add(_uid(obj))
            else:
                obj.setdefault("apiVersion", self.api_version)
                obj.setdefault("kind", self.kind)
                self.objects[name] = obj
            self.changed.notify_all()
        return version


class NamespaceWatches:
    """The watches of one namespace, one per kind, started when first asked for and shared
    by every gate. One condition is notified on any change, which every waiter re-checks."""

    def __init__(self, api: client.ApiClient, collection_path: Callable[[str, str], str],
                 reconnect_seconds: float = RECONNECT_SECONDS) -> None:
        self._api = api
        self._collection_path = collection_path
        self.reconnect_seconds = reconnect_seconds
        self.changed = threading.Condition()
        self._watches: dict[tuple[str, str], KindWatch] = {}

    def of(self, api_version: str, kind: str) -> KindWatch:
        """The watch of `kind`, started now unless one runs (one that gave up starts anew)."""
        with self.changed:
            watch = self._watches.get((api_version, kind))
            if watch is None or not watch.alive:
                watch = KindWatch(self._api, self._collection_path(api_version, kind),
                                  api_version, kind, self.changed, self.reconnect_seconds)
                self._watches[(api_version, kind)] = watch
                watch.start()
            return watch

    def wait_until(self, check: Callable[[], T | None], deadline: float,
                   watches: tuple[KindWatch, ...]) -> T | None:
        """`check()`'s first answer that is not None, checked on every change until
        `deadline`; None then. Raises what a watch gave up with."""
        with self.changed:
            while True:
                for watch in watches:
                    if watch.error is not None:
                        raise watch.error
                if all(watch.synced for watch in watches):
                    answer = check()
                    if answer is not None:
                        return answer
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.changed.wait(remaining)

    def close(self) -> None:
        with self.changed:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.stop()


def _uid(obj: dict[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid", ""))


def _lines(response: Any) -> Iterator[bytes]:
    """The stream's lines as they arrive (one JSON event each)."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from (line for line in lines if line.strip())
    if pending.strip():
        yield pending
