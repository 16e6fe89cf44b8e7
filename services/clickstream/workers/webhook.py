"""Webhook destinations: POST events as JSON, signed with the destination's secret.

One event per request (the event object), or with ``batch_size`` > 1 a
``{"batch": [...]}`` object. With a secret, ``X-Clickstream-Signature`` carries
``sha256=<hex HMAC-SHA256 of the body>``, as GitHub-style receivers expect.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import requests

from clickstream.config import Settings
from clickstream.destination_settings import InvalidSettings, WebhookSettings, parse_settings
from clickstream.retry import DeliveryError
from clickstream.storage import Destination
from clickstream.workers.sink import RoutedEvent
from clickstream.workers.webhook_transport import DEADLINES, read_answer, watched_session

SIGNATURE_HEADER = "X-Clickstream-Signature"
USER_AGENT = "clickstream-webhook/1"
# Statuses worth trying again; any other 4xx means the request itself is wrong.
RETRYABLE_CLIENT_ERRORS = {408, 429}


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode_body(events: list[RoutedEvent], batched: bool) -> bytes:
    # The stored JSON is sent as it is: no re-encoding, byte for byte what was accepted.
    if not batched:
        return events[0].value
    return b'{"batch":[' + b",".join(e.value for e in events) + b"]}"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


def shown_url(url: str) -> str:
    """The URL for error messages (logs, the destination's last error, dead-letter
    headers): no `user:password@`, no query string or fragment, which may carry a
    token."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class WebhookSink:
    def __init__(self, settings: Settings | None = None) -> None:
        self._local = threading.local()
        self._parsed: dict[int, tuple[dict, WebhookSettings]] = {}

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = watched_session(USER_AGENT)
        return session

    def _settings(self, destination: Destination) -> WebhookSettings:
        cached = self._parsed.get(destination.id)
        if cached is None or cached[0] != destination.settings:
            cached = (destination.settings, parse_settings("webhook", destination.settings))
            self._parsed[destination.id] = cached
        return cached[1]

    def batch_size(self, destination: Destination) -> int:
        return self._settings(destination).batch_size

    def linger_seconds(self, destination: Destination) -> float:
        return 0.0

    def deliver(self, destination: Destination, events: list[RoutedEvent]) -> None:
        try:
            settings = self._settings(destination)
        except InvalidSettings as exc:
            raise DeliveryError(f"invalid settings: {exc}", retryable=False) from None
        body = encode_body(events, batched=settings.batch_size > 1)
        headers = {"Content-Type": "application/json", **(settings.headers or {})}
        if destination.secret:
            headers[SIGNATURE_HEADER] = sign(destination.secret, body)
        timeout = settings.timeout_seconds
        with DEADLINES.bound(timeout) as request:
            try:
                response = self._session().post(settings.url, data=body, headers=headers,
                                                timeout=timeout, allow_redirects=False,
                                                stream=True)
                answer = read_answer(response)
            except requests.RequestException as exc:
                # Only the type: requests' messages repeat the URL, query string and all.
                what = f"timed out after {timeout:g}s" if request.expired else type(exc).__name__
                raise DeliveryError(f"{what} posting to {shown_url(settings.url)}") from None
        if request.expired:
            # Its connection was cut: what was read of the answer (an end of headers
            # http.client took the cut for, say) proves nothing.
            raise DeliveryError(f"timed out after {timeout:g}s posting to "
                                f"{shown_url(settings.url)}")
        status = response.status_code
        if 200 <= status < 300:
            return
        retryable = status >= 500 or status in RETRYABLE_CLIENT_ERRORS
        text = answer[:200].decode("utf-8", "replace")
        raise DeliveryError(
            f"HTTP {status} from {shown_url(settings.url)}: {text}",
            retryable=retryable,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
