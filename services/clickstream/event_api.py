"""The Event API: Segment-compatible HTTP endpoints that make events durable in Kafka.

Run with ``gunicorn -c python:clickstream.gunicorn_conf "clickstream.event_api:create_app()"``.
A request is answered 200 only after Kafka acknowledged every event in it; a batch is
accepted whole or refused whole, so the client can always retry it as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from clickstream import cors, limits, metrics
from clickstream.config import Settings
from clickstream.events import SHORT_PATHS, InvalidEvent, partition_key, prepare_event
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


def _json_response(body: dict[str, Any], status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status, headers, mimetype="application/json")


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


def _read_body(max_bytes: int) -> bytes:
    """The request body, decoded as its ``Content-Encoding`` says, refused when over
    ``max_bytes`` before or after decoding."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise Refused(413, "too_large", f"request body over {max_bytes} bytes")
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Refused(413, "too_large", f"request body over {max_bytes} bytes")
    return decode_body(raw, request.headers.get("Content-Encoding", ""), max_bytes)


def _basic_auth_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _client_ip() -> str | None:
    # The Event API sits behind the platform's load balancer; its first hop is the client.
    forwarded = request.headers.get("X-Forwarded-For")
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

    def ready(self) -> bool:
        if not self._topic_created.is_set():
            return False
        now = time.monotonic()
        if now < self._ready_until:
            return True
        if self.producer.reachable(self.topic):
            self._ready_until = now + 1.0
            return True
        return False

    def handle(self, event_type: str | None, batch: bool, correct_skew: bool = True) -> Response:
        if not self._topic_created.is_set():
            raise Refused(503, "unavailable", "the event topic is not ready yet; retry later",
                          retry_after=UNAVAILABLE_RETRY_AFTER)
        payload = parse_json(_read_body(limits.BATCH_BYTES if batch else limits.EVENT_BYTES))
        if not isinstance(payload, dict):
            raise Refused(400, "invalid_json", "body must be a JSON object")

        key = _basic_auth_key() or payload.get("writeKey")
        if not isinstance(key, str) or not key:
            raise Refused(401, "no_write_key",
                          "write key missing: send it as the HTTP Basic user or `writeKey`")
        try:
            app = self.keys.lookup(key)
        except KeyStoreUnavailable:
            raise Refused(503, "unavailable", "cannot check the write key now",
                          retry_after=UNAVAILABLE_RETRY_AFTER) from None
        if app is None:
            raise Refused(401, "unknown_write_key", "unknown write key")
        origin = request.headers.get("Origin")
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
        messages = self._prepare(events, event_type, sent_at, correct_skew, app.id)
        try:
            self.producer.produce_all(self.topic, messages,
                                      headers=[("app_id", str(app.id).encode())])
        except NotDurable as exc:
            log.warning("events not made durable", extra={"error": str(exc),
                                                          "events": len(messages)})
            raise Refused(503, "unavailable", "events could not be stored; retry later",
                          retry_after=UNAVAILABLE_RETRY_AFTER) from None
        metrics.PRODUCED.inc(len(messages))
        return _json_response({"success": True})

    def _prepare(self, events: list[Any], event_type: str | None, sent_at: Any,
                 correct_skew: bool, app_id: int) -> list[tuple[bytes, bytes]]:
        received_at = datetime.now(timezone.utc)
        ip = _client_ip()
        messages, errors, too_large = [], [], []
        for index, event in enumerate(events):
            try:
                prepared = prepare_event(event, event_type, received_at, ip, sent_at,
                                         correct_skew, id_scope=f"app:{app_id}", index=index)
            except InvalidEvent as exc:
                errors.append({"index": index, "error": str(exc)})
                continue
            value = json.dumps(prepared, separators=(",", ":"), ensure_ascii=False).encode()
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


def request_api_host() -> tuple[str, str]:
    """(protocol, host[:port]) the client reached us by, as the gateway passes them on
    (``Host`` with its port, ``X-Forwarded-Proto``). ``X-Forwarded-Host`` is not read:
    the gateway passes a client's own on unchanged."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",", 1)[0].strip().lower()
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

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 500: "internal_error"}


def create_app(settings: Settings | None = None, ingest: Ingest | None = None) -> Flask:
    """The Event API; ``ingest`` replaces the one made from ``settings`` (tests)."""
    app = Flask(__name__)
    ingest = ingest or Ingest(settings or Settings.from_env())
    app.extensions["clickstream.ingest"] = ingest
    spec = json.dumps(build_spec())

    def endpoint(event_type: str | None, batch: bool, correct_skew: bool = True):
        def view() -> Response:
            return ingest.handle(event_type, batch, correct_skew)
        return view

    for name in SINGLE_TYPES:
        app.add_url_rule(f"/v1/{name}", f"v1_{name}", endpoint(name, False), methods=["POST"])
    for short, name in SHORT_PATHS.items():
        app.add_url_rule(f"/v1/{short}", f"v1_{short}", endpoint(name, False),
                         methods=["POST"])
    batch_view = endpoint(None, True)
    app.add_url_rule("/v1/batch", "v1_batch", batch_view, methods=["POST"])
    app.add_url_rule(f"/v1/{SHORT_BATCH_PATH}", f"v1_{SHORT_BATCH_PATH}", batch_view,
                     methods=["POST"])
    app.add_url_rule("/v1/import", "v1_import", endpoint(None, True, correct_skew=False),
                     methods=["POST"])

    @app.get("/v1/projects/<write_key>/settings")
    def project_settings(write_key: str) -> Response:
        # Not counted as rejected events: a page load asks for this, not an event.
        try:
            found = ingest.keys.lookup(write_key)
        except KeyStoreUnavailable:
            return _json_response(error_body("unavailable", "cannot check the write key now"),
                                  503, {"Retry-After": UNAVAILABLE_RETRY_AFTER})
        if found is None:
            return _json_response(error_body("unknown_write_key", "unknown write key"), 404)
        origin = request.headers.get("Origin")
        if not cors.origin_allowed(origin, found.allowed_origins):
            # The tracker would only have its events refused: it had better not start.
            return _json_response(error_body(
                "origin_not_allowed", f"origin {origin[:200]} may not send events for this "
                "write key; add it to the app's allowed origins"), 403)
        protocol, host = request_api_host()
        return _json_response(tracker_settings(write_key, protocol, host), headers={
            # Private: the document names the host the request came to, which a
            # shared cache must not hand to clients that came by another.
            "Cache-Control": f"private, max-age={SETTINGS_MAX_AGE}"})

    @app.before_request
    def preflight() -> Response | None:
        # Answered for every path, before routing: a preflight carries no write key,
        # and a refused preflight hides the real answer (a readable 404) from the page.
        if request.method != "OPTIONS":
            return None
        return Response(status=204, headers=cors.preflight_headers(request.headers.get(
            "Origin"), request.headers))

    @app.after_request
    def allow_cross_origin(response: Response) -> Response:
        # Errors too: a browser reports an unreadable answer as a network failure and
        # sends the same events again.
        for name, value in cors.response_headers(request.headers.get("Origin")).items():
            response.headers.setdefault(name, value)
        response.vary.add("Origin")
        if request.method == "OPTIONS":
            response.vary.update(("Access-Control-Request-Method",
                                  "Access-Control-Request-Headers"))
        return response

    @app.after_request
    def count_response(response: Response) -> Response:
        # Every answer, errors included (Flask runs this for a 500 from an unhandled
        # exception too): the alert on server errors is computed from it.
        metrics.RESPONSES.labels(str(response.status_code)).inc()
        return response

    @app.errorhandler(Refused)
    def refused(exc: Refused) -> Response:
        metrics.REJECTED.labels(exc.reason).inc()
        headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
        return _json_response(error_body(exc.reason, exc.message, exc.errors), exc.status,
                              headers)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status) or exc.name.lower().replace(" ", "_")
        headers = None
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            headers = {"Allow": ", ".join(sorted(exc.valid_methods))}
        return _json_response(error_body(code, exc.description or exc.name), status, headers)

    @app.get("/health")
    def health() -> Response:
        return _json_response({"status": "ok"})

    @app.get("/ready")
    def ready() -> Response:
        if ingest.ready():
            return _json_response({"status": "ready"})
        return _json_response({"status": "kafka unreachable"}, 503)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return Response(spec, mimetype="application/json")

    @app.get("/metrics")
    def metrics_view() -> Response:
        body, content_type = metrics.render_metrics()
        return Response(body, content_type=content_type)

    return app
