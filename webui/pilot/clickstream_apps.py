"""Clickstream apps and their write keys, as the console shows and changes them.

Every read and write goes through `clickstream.storage`, the functions clickstream's own
CLI uses, on the clickstream module's database: there is one way to make an app or a
key. That database is the module's, not Pilot's: Pilot starts without it (the module may
be disabled, or its Postgres down, or its schema not migrated yet) and the apps pages
say which of these it is.

A write key is shown once, when it is made; clickstream keeps its sha256 and its first
characters. Rotating is adding a key (both work), then revoking the old one.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from flask import abort

from clickstream import storage
from pilot.database import CONNECT_TIMEOUT

NAME_MAX = 100
RATE_LIMIT_MAX = 1_000_000  # events/s per Event API process; the column is an INTEGER
KEY_PLACEHOLDER = "YOUR_WRITE_KEY"
# The gateway routes /v1/ to the Event API and everything else to Pilot, so the Event API
# is at Pilot's own origin, under this path.
EVENT_API_PATH = "/v1"
NOT_ENABLED = ("The clickstream module is not enabled on this platform. Enable it in "
               "platform.yaml (modules.clickstream.enabled: true) and upgrade; then its "
               "apps are made and listed here.")

Connection = psycopg.Connection[tuple[Any, ...]]


class ClickstreamDisabled(Exception):
    """The platform runs without the clickstream module: 404 with NOT_ENABLED."""


class ClickstreamUnavailable(Exception):
    """The clickstream database cannot be used now: 503 with this reason."""


class AppNameTaken(Exception):
    pass


@dataclass(frozen=True)
class AppKeys:
    """An app and its write keys (active and revoked, oldest first)."""

    app: storage.App
    keys: list[storage.WriteKey]

    @property
    def active(self) -> list[storage.WriteKey]:
        return [k for k in self.keys if not k.revoked]

    def key(self, key_id: int) -> storage.WriteKey:
        """This app's key `key_id`; 404 for any other, so no id of another app is told."""
        for found in self.keys:
            if found.id == key_id:
                return found
        abort(404, f"App {self.app.name} has no write key {key_id}.")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.app.id, "name": self.app.name, "rate_limit": self.app.rate_limit,
                "active_keys": len(self.active), "keys": [key_json(k) for k in self.keys]}


def key_json(key: storage.WriteKey) -> dict[str, Any]:
    return {"id": key.id, "app_id": key.app_id, "prefix": key.key_prefix,
            "state": "revoked" if key.revoked else "active"}


def name_problem(name: str) -> str | None:
    """What is wrong with an app name (already stripped, 1 to NAME_MAX characters, no
    control characters), if anything."""
    if name.isdigit():
        # clickstream's CLI takes a number for an app id, so such an app could not be
        # named there.
        return "not only digits (a number is taken for an app id)"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \u escapes can carry
        return "text that is valid Unicode"
    return None


class Clickstream:
    """The clickstream database, a connection per unit of work (as Pilot's own)."""

    def __init__(self, dsn: str | None) -> None:
        self.dsn = dsn

    @property
    def enabled(self) -> bool:
        return self.dsn is not None

    @contextmanager
    def connect(self, timeout: int = CONNECT_TIMEOUT) -> Iterator[Connection]:
        """A connection in a transaction, committed when the block ends without error."""
        if self.dsn is None:
            raise ClickstreamDisabled()
        try:
            conn = psycopg.connect(self.dsn, connect_timeout=timeout)
        except psycopg.OperationalError as exc:
            raise ClickstreamUnavailable(_unavailable(exc)) from None
        try:
            with conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise ClickstreamUnavailable(_unavailable(exc)) from None
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn,
                psycopg.errors.InvalidSchemaName) as exc:
            # Pilot can start before clickstream-migrate has run (or finished an upgrade).
            raise ClickstreamUnavailable(
                "the clickstream database is not migrated yet (its clickstream-migrate job "
                f"has not run): {_first_line(exc)}") from None

    def ping(self, timeout: int = 2) -> str | None:
        """None when the clickstream database answers, else why not."""
        try:
            with self.connect(timeout) as conn:
                conn.execute("SELECT 1")
        except ClickstreamUnavailable as exc:
            return str(exc)
        return None

    def apps(self) -> list[AppKeys]:
        with self.connect() as conn:
            return [AppKeys(app, storage.list_write_keys(conn, app.id))
                    for app in storage.list_apps(conn)]

    def app(self, app_id: int) -> AppKeys:
        with self.connect() as conn:
            return _app_keys(conn, app_id)

    def create(self, name: str, rate_limit: int | None) -> tuple[AppKeys, str]:
        """(the new app with its first key, that key: shown once). AppNameTaken."""
        try:
            with self.connect() as conn:
                app = storage.create_app(conn, name, rate_limit)
                key = storage.add_write_key(conn, app.id)
                return AppKeys(app, storage.list_write_keys(conn, app.id)), key
        except psycopg.errors.UniqueViolation:
            raise AppNameTaken(name) from None

    def add_key(self, app_id: int) -> tuple[AppKeys, storage.WriteKey, str]:
        """(the app with all its keys, the new key's entry, the new key: shown once)."""
        with self.connect() as conn:
            _app_keys(conn, app_id)  # 404 before anything is written
            key = storage.add_write_key(conn, app_id)
            found = _app_keys(conn, app_id)
        # add_write_key answers the key only: its entry is the newest of its prefix.
        mine = max((k for k in found.keys if k.key_prefix == key[:storage.KEY_PREFIX_LENGTH]),
                   key=lambda k: k.id)
        return found, mine, key

    def revoke(self, app_id: int, key_id: int) -> tuple[AppKeys, storage.WriteKey]:
        """Revoke the app's key (again: nothing changes); (the app, the key's entry)."""
        with self.connect() as conn:
            before = _app_keys(conn, app_id)
            if not before.key(key_id).revoked:
                # NotFound: revoked meanwhile by someone else, the outcome asked for.
                with suppress(storage.NotFound):
                    storage.revoke_write_key(conn, key_id)
            after = _app_keys(conn, app_id)
        return after, after.key(key_id)


def _app_keys(conn: Connection, app_id: int) -> AppKeys:
    try:
        app = storage.get_app(conn, app_id)
    except storage.NotFound:
        abort(404, f"There is no clickstream app {app_id}.")
    return AppKeys(app, storage.list_write_keys(conn, app.id))


@dataclass(frozen=True)
class EventApi:
    """Where trackers send events: this platform's Event API, through its gateway."""

    protocol: str  # http or https
    host: str  # host[:port], as the browser reached Pilot

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.host}{EVENT_API_PATH}"

    @property
    def origin(self) -> str:
        return f"{self.protocol}://{self.host}"

    def script_snippet(self, write_key: str = KEY_PLACEHOLDER, load_options: str = "") -> str:
        """A page's <script> that loads analytics.js from this platform's gateway (and its
        settings from the Event API): nothing comes from Segment's CDN. Calls made
        before the loader arrives are queued in `window.analytics`, which it replays;
        `_cdn` tells it where its chunks and settings are. `load_options`, if given, is
        a JavaScript object for `analytics.load` (batching, say)."""
        key, origin = json.dumps(write_key), json.dumps(self.origin)
        options = f", {load_options}" if load_options else ""
        return "\n".join([
            "<script>",
            "  (function () {",
            "    var analytics = (window.analytics = window.analytics || []);",
            "    if (analytics.initialize || analytics.invoked) return;",
            "    analytics.invoked = true;",
            '    ["track", "identify", "page", "group", "alias", "screen", "ready", "reset",',
            '     "on", "once", "off", "debug", "setAnonymousId", "addSourceMiddleware"]',
            "      .forEach(function (method) {",
            "        analytics[method] = function () {",
            "          var call = Array.prototype.slice.call(arguments);",
            "          call.unshift(method);",
            "          analytics.push(call);",
            "          return analytics;",
            "        };",
            "      });",
            "    analytics.load = function (key, options) {",
            '      var script = document.createElement("script");',
            "      script.async = true;",
            f'      script.src = {origin} + "/analytics.js/v1/" + key + "/analytics.min.js";',
            "      document.head.appendChild(script);",
            "      analytics._loadOptions = options;",
            "    };",
            f"    analytics._writeKey = {key};",
            f"    analytics._cdn = {origin};",
            f"    analytics.load({key}{options});",
            "    analytics.page();",
            "  })();",
            "</script>",
        ])

    def browser_snippet(self, write_key: str = KEY_PLACEHOLDER) -> str:
        """analytics.js 2.0 (@segment/analytics-next) sending to this platform only."""
        key = json.dumps(write_key)
        api_host = json.dumps(self.host + EVENT_API_PATH)
        return "\n".join([
            "// npm install @segment/analytics-next (bundled with your site: no CDN)",
            'import { AnalyticsBrowser } from "@segment/analytics-next";',
            "",
            "export const analytics = new AnalyticsBrowser();",
            "analytics.load(",
            "  {",
            f"    writeKey: {key},",
            "    // The source's settings, given here: nothing is fetched from Segment's CDN,",
            "    // and the library's own telemetry (sent to api.segment.io) is off.",
            "    cdnSettings: {",
            f'      integrations: {{ "Segment.io": {{ apiKey: {key} }} }},',
            "      metrics: { sampleRate: 0 },",
            "    },",
            "  },",
            "  // Events go to this platform's Event API.",
            f'  {{ integrations: {{ "Segment.io": {{ apiHost: {api_host}, '
            f'protocol: {json.dumps(self.protocol)} }} }} }},',
            ");",
            "",
            "analytics.page();",
            'analytics.identify("user-42", { email: "ada@example.com" });',
            'analytics.track("Signed Up", { plan: "free" });',
        ])

    def curl_example(self, write_key: str = KEY_PLACEHOLDER) -> str:
        """One track event, the write key as the HTTP Basic user with no password."""
        event = json.dumps({"userId": "user-42", "event": "Signed Up",
                            "properties": {"plan": "free"}})
        return " \\\n  ".join([
            f"curl -u {shlex.quote(write_key + ':')}",
            "-H 'Content-Type: application/json'",
            f"-d {shlex.quote(event)}",
            shlex.quote(f"{self.url}/track"),
        ])


def _unavailable(exc: Exception) -> str:
    return f"the clickstream database is unavailable: {_first_line(exc)}"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
