"""The Event API: Segment-compatible HTTP endpoints that make events durable in Kafka.

Served by granian (``python -m clickstream event-api``, :mod:`clickstream.event_api_server`),
one event loop and one Kafka producer per worker process. A request is answered 200
only after Kafka acknowledged every event in it; a batch is accepted whole or refused
whole, so the client can always retry it as it is.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import orjson

from clickstream import cors, limits, metrics
from clickstream.config import Settings
from clickstream.events import SHORT_PATHS, InvalidEvent, partition_key, prepare_event
from clickstream.http_exchange import Request, Response, json_response, serve_rsgi
from clickstream.openapi import build_spec
from clickstream.producer import DurableProducer, NotDurable
from clickstream.rate_limit import RateLimiter, retry_after_header
from clickstream.refused import Refused
from clickstream.request_body import decode_body, parse_json
from clickstream.topics import TopicCreator, raw_topic
from clickstream.write_keys import KeyStoreUnavailable, WriteKeyCache

log = logging.getLogger(__name__)

SINGLE_TYPES = ("track", "identify", "page", "screen", "group", "alias")
SHORT_BATCH_PATH = "b"  # analytics.js in batching mode; SHORT_PATHS for single events
# How long a refused client should wait before retrying when Kafka is unavailable.
UNAVAILABLE_RETRY_AFTER = "5"
_SUCCESS = b'{"success": true}'


def error_body(code: str, message: str,
               errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An error answer: ours (``success``, ``error``, ``errors``) plus the ``code`` and
    ``message`` that Segment's libraries read; without them some treat a permanent
    error as a network failure and retry it."""
    body: dict[str, Any] = {"success": False, "error": message, "code": code,
                            "message": message}
    if errors:
        body["errors"] = errors[:100]
    return body


def _basic_auth_key(request: Request) -> str | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _client_ip(request: Request) -> str | None:
    # The Event API sits behind the platform's load balancer; its first hop is the client.
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",", 1)[0].strip() or request.remote_addr
    return request.remote_addr


class Ingest:
    """What every request needs: key lookups, rate limits, the producer, the topic."""

    def __init__(self, settings: Settings) -> None:
        self.topic = raw_topic(settings.topic_prefix)
        self.keys = WriteKeyCache(settings.postgres_dsn, ttl=settings.write_key_cache_seconds)
        self.limiter = RateLimiter()
        self.producer = DurableProducer(settings)
        self._topics = TopicCreator(settings.kafka_bootstrap, settings.topic_partitions)
        self._ready_until = 0.0
        # Nothing may touch the raw topic before it exists with its partitions: a
        # producer's metadata request for a missing topic makes the broker auto-create
        # it with its default partition count, and keys would land on other partitions.
        self._topic_created = threading.Event()
        threading.Thread(target=self._ensure_topic, name="ensure-topic", daemon=True).start()

    def _ensure_topic(self) -> None:
        while True:
            try:
                self._topics.ensure([self.topic])
                self._topic_created.set()
                return
            except Exception as exc:  # Kafka may not be up yet; /ready reports it
                log.warning("cannot create the raw topic yet", extra={"error": str(exc)})
                time.sleep(5)

    async def ready(self) -> bool:
        if not self._topic_created.is_set():
            return False
        now = time.monotonic()
        if now < self._ready_until:
            return True
        if await asyncio.to_thread(self.producer.reachable, self.topic):
            self._ready_until = now + 1.0
            return True
        return False

    async def handle(self, request: Request, event_type: str | None, batch: bool,
                     correct_skew: bool = True) -> Response:
        if not self._topic_created.is_set():
            raise Refused(503, "unavailable", "the event topic is not ready yet; retry later",
                          retry_after=UNAVAILABLE_RETRY_AFTER)
        max_bytes = limits.BATCH_BYTES if batch else limits.EVENT_BYTES
        raw = await request.body(max_bytes)
        coding = request.headers.get("content-encoding", "")
        payload = parse_json(decode_body(raw, coding, max_bytes))
        if not isinstance(payload, dict):
            raise Refused(400, "invalid_json", "body must be a JSON object")

        key = _basic_auth_key(request) or payload.get("writeKey")
        if not isinstance(key, str) or not key:
            raise Refused(401, "no_write_key",
                          "write key missing: send it as the HTTP Basic user or `writeKey`")
        try:
            app = await self.keys.find(key)
        except KeyStoreUnavailable:
            raise Refused(503, "unavailable", "cannot check the write key now",
                          retry_after=UNAVAILABLE_RETRY_AFTER) from None
        if app is None:
            raise Refused(401, "unknown_write_key", "unknown write key")
        origin = request.headers.get("origin")
        if not cors.origin_allowed(origin, app.allowed_origins):
            raise Refused(403, "origin_not_allowed",
                          f"origin {origin[:200]} may not send events for this write key; "
                          "add it to the app's allowed origins")

        if batch:
            events = payload.get("batch")
            if not isinstance(events, list):
                raise Refused(400, "invalid_event", "`batch` must be an array of events")
            if len(events) > limits.BATCH_EVENTS:
                raise Refused(413, "too_many_events",
                              f"batch has {len(events)} events; the limit is "
                              f"{limits.BATCH_EVENTS}")
            if not events:
                raise Refused(400, "invalid_event", "`batch` is empty")
            _apply_batch_defaults(payload, events)
            sent_at = payload.get("sentAt")
        else:
            events, sent_at = [payload], None

        wait = self.limiter.acquire(app.id, app.rate_limit, len(events))
        if wait:
            raise Refused(429, "rate_limited", "rate limit exceeded",
                          retry_after=retry_after_header(wait))

        metrics.RECEIVED.inc(len(events))
        messages = self._prepare(events, event_type, sent_at, correct_skew, app.id,
                                 _client_ip(request))
        try:
            await self.producer.produce_all(self.topic, messages,
                                            headers=[("app_id", str(app.id).encode())])
        except NotDurable as exc:
            log.warning("events not made durable", extra={"error": str(exc),
                                                          "events": len(messages)})
            raise Refused(503, "unavailable", "events could not be stored; retry later",
                          retry_after=UNAVAILABLE_RETRY_AFTER) from None
        metrics.PRODUCED.inc(len(messages))
        return Response(200, _SUCCESS)

    def _prepare(self, events: list[Any], event_type: str | None, sent_at: Any,
                 correct_skew: bool, app_id: int, ip: str | None) -> list[tuple[bytes, bytes]]:
        received_at = datetime.now(timezone.utc)
        messages, errors, too_large = [], [], []
        for index, event in enumerate(events):
            try:
                prepared = prepare_event(event, event_type, received_at, ip, sent_at,
                                         correct_skew, id_scope=f"app:{app_id}", index=index)
            except InvalidEvent as exc:
                errors.append({"index": index, "error": str(exc)})
                continue
            value = orjson.dumps(prepared)
            if len(value) > limits.EVENT_BYTES:
                too_large.append({"index": index,
                                  "error": f"event is {len(value)} bytes; the limit is "
                                           f"{limits.EVENT_BYTES}"})
                continue
            messages.append((partition_key(prepared), value))
        if errors:
            message = errors[0]["error"] if len(events) == 1 else "invalid events in batch"
            raise Refused(400, "invalid_event", message, errors=errors)
        if too_large:
            raise Refused(413, "too_large", "event too large", errors=too_large)
        return messages


def _apply_batch_defaults(payload: dict[str, Any], events: list[Any]) -> None:
    """Batch-level ``context`` and ``integrations`` apply to events that lack them."""
    for name in ("context", "integrations"):
        shared = payload.get(name)
        if not isinstance(shared, dict):
            continue
        for event in events:
            if isinstance(event, dict) and isinstance(event.get(name, {}), dict):
                event[name] = {**shared, **(event.get(name) or {})}


def request_api_host(request: Request) -> tuple[str, str]:
    """(protocol, host[:port]) the client reached us by, as the gateway passes them on
    (``Host`` with its port, ``X-Forwarded-Proto``). ``X-Forwarded-Host`` is not read:
    the gateway passes a client's own on unchanged."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",", 1)[0].strip().lower()
    protocol = forwarded if forwarded in ("http", "https") else request.scheme
    return protocol, request.host


def tracker_settings(write_key: str, protocol: str, host: str) -> dict[str, Any]:
    """The settings document analytics.js 2.0 loads at start (Segment's CDN serves it at
    ``/v1/projects/{writeKey}/settings``), so that the tracker sends events here and
    nothing anywhere else: no destinations run in the browser, no remote plugins or
    middleware to fetch, and its own usage metrics (otherwise sent to api.segment.io)
    off."""
    api_host = f"{host}/v1"
    return {
        "integrations": {"Segment.io": {"apiKey": write_key, "apiHost": api_host,
                                        "protocol": protocol}},
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "remotePlugins": [],
        "legacyVideoPluginsEnabled": False,
        "edgeFunction": {},
        "consentSettings": {"allCategories": [], "hasUnmappedDestinations": False},
        "metrics": {"sampleRate": 0, "host": api_host},
        "autoInstrumentationSettings": {"sampleRate": 0},
    }


# Browsers reuse a key's settings this long; an app's changes reach them within it.
SETTINGS_MAX_AGE = 60

_CODES = {404: "not_found", 405: "method_not_allowed", 500: "internal_error"}

Handler = Callable[[Request], Awaitable[Response]]


class EventApi:
    """The Event API as an RSGI application: a route table over :class:`Ingest`.

    The Kafka producer and the write-key cache are made in each worker process, when
    the server starts its event loop (``__rsgi_init__``); ``ingest`` given here is used
    instead (tests)."""

    def __init__(self, settings: Settings | None = None, ingest: Ingest | None = None) -> None:
        self._settings = settings
        self.ingest = ingest
        self._spec = json.dumps(build_spec()).encode()
        self.routes: dict[str, dict[str, Handler]] = {}
        for name in SINGLE_TYPES:
            self._post(f"/v1/{name}", name, batch=False)
        for short, name in SHORT_PATHS.items():
            self._post(f"/v1/{short}", name, batch=False)
        for path in ("/v1/batch", f"/v1/{SHORT_BATCH_PATH}"):
            self._post(path, None, batch=True)
        self._post("/v1/import", None, batch=True, correct_skew=False)
        for path, view in (("/health", self.health), ("/ready", self.ready),
                           ("/openapi.json", self.openapi), ("/metrics", self.metrics)):
            self.routes[path] = {"GET": view, "HEAD": view}

    def _post(self, path: str, event_type: str | None, batch: bool,
              correct_skew: bool = True) -> None:
        async def view(request: Request) -> Response:
            return await self._ingest().handle(request, event_type, batch, correct_skew)
        self.routes[path] = {"POST": view}

    def _ingest(self) -> Ingest:
        if self.ingest is None:
            self.ingest = Ingest(self._settings or Settings.from_env())
        return self.ingest

    def __rsgi_init__(self, _loop: asyncio.AbstractEventLoop) -> None:
        self._ingest()

    def __rsgi_del__(self, _loop: asyncio.AbstractEventLoop) -> None:
        if self.ingest is not None:
            self.ingest.producer.close()

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        await serve_rsgi(scope, proto, self.respond)

    async def respond(self, request: Request) -> Response:
        """The answer to ``request``, with the headers every answer carries."""
        origin = request.headers.get("origin")
        try:
            response = await self._route(request)
        except Refused as exc:
            metrics.REJECTED.labels(exc.reason).inc()
            headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
            response = json_response(error_body(exc.reason, exc.message, exc.errors),
                                     exc.status, headers)
        except Exception:
            log.exception("request failed", extra={"path": request.path[:200]})
            response = json_response(error_body("internal_error", "internal server error"),
                                     500)
        # Errors too: a browser reports an unreadable answer as a network failure and
        # sends the same events again.
        for name, value in cors.response_headers(origin).items():
            response.headers.setdefault(name, value)
        response.headers["Vary"] = ("Origin, Access-Control-Request-Method, "
                                    "Access-Control-Request-Headers"
                                    if request.method == "OPTIONS" else "Origin")
        # Every answer, errors included: the alert on server errors is computed from it.
        metrics.RESPONSES.labels(str(response.status)).inc()
        return response

    async def _route(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            # Answered for every path, before routing: a preflight carries no write key,
            # and a refused preflight hides the real answer (a readable 404) from the page.
            return Response(204, headers=cors.preflight_headers(
                request.headers.get("origin"), request.headers), content_type=None)
        methods = self.routes.get(request.path)
        if methods is None:
            key = _settings_key(request.path)
            if key is None:
                return _http_error(404, "The requested URL was not found on the server.")
            methods = {"GET": lambda r: self.project_settings(r, key)}
            methods["HEAD"] = methods["GET"]
        view = methods.get(request.method)
        if view is None:
            allowed = sorted({*methods, "OPTIONS"})
            return _http_error(405, "The method is not allowed for the requested URL.",
                               {"Allow": ", ".join(allowed)})
        return await view(request)

    async def project_settings(self, request: Request, write_key: str) -> Response:
        # Not counted as rejected events: a page load asks for this, not an event.
        try:
            found = await self._ingest().keys.find(write_key)
        except KeyStoreUnavailable:
            return json_response(error_body("unavailable", "cannot check the write key now"),
                                 503, {"Retry-After": UNAVAILABLE_RETRY_AFTER})
        if found is None:
            return json_response(error_body("unknown_write_key", "unknown write key"), 404)
        origin = request.headers.get("origin")
        if not cors.origin_allowed(origin, found.allowed_origins):
            # The tracker would only have its events refused: it had better not start.
            return json_response(error_body(
                "origin_not_allowed", f"origin {origin[:200]} may not send events for this "
                "write key; add it to the app's allowed origins"), 403)
        protocol, host = request_api_host(request)
        return json_response(tracker_settings(write_key, protocol, host), headers={
            # Private: the document names the host the request came to, which a
            # shared cache must not hand to clients that came by another.
            "Cache-Control": f"private, max-age={SETTINGS_MAX_AGE}"})

    async def health(self, _request: Request) -> Response:
        return json_response({"status": "ok"})

    async def ready(self, _request: Request) -> Response:
        if await self._ingest().ready():
            return json_response({"status": "ready"})
        return json_response({"status": "kafka unreachable"}, 503)

    async def openapi(self, _request: Request) -> Response:
        return Response(200, self._spec)

    async def metrics(self, _request: Request) -> Response:
        body, content_type = metrics.render_metrics()
        return Response(200, body, content_type=content_type)


def _settings_key(path: str) -> str | None:
    """The write key of a ``/v1/projects/{writeKey}/settings`` path."""
    prefix, suffix = "/v1/projects/", "/settings"
    if path.startswith(prefix) and path.endswith(suffix):
        key = path[len(prefix):-len(suffix)]
        if key and "/" not in key:
            return key
    return None


def _http_error(status: int, description: str,
                headers: dict[str, str] | None = None) -> Response:
    return json_response(error_body(_CODES[status], description), status, headers)


#: What the server loads (``clickstream.event_api:application``).
application = EventApi()
