"""A clickstream app's destinations, as the console shows and changes them.

Reads and writes go through `clickstream.storage` on the clickstream module's database,
the functions its CLI uses; settings are checked by `clickstream.destination_settings`,
what the workers themselves accept, after Pilot has checked each one's type (which
those classes take on trust). Replaying dead letters is `clickstream.replay`, what the
CLI's `replay --destination ID` runs: the same Kafka transactions and the same replay
group, so a replay from here and one from the CLI never send anything twice.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import types
import typing
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psycopg
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from flask import abort

from clickstream import storage
from clickstream.config import Settings as ClickstreamSettings
from clickstream.destination_settings import (
    SETTINGS_BY_KIND,
    InvalidSettings,
    RetryPolicy,
    parse_settings,
    shown_settings,
)
from clickstream.events import TYPES as EVENT_TYPES
from clickstream.replay import replay_dead_letters
from pilot.clickstream_apps import Clickstream, ClickstreamUnavailable, Connection
from pilot.text import control_characters

KINDS = storage.KINDS
KIND_TITLES = {"webhook": "Webhook", "warehouse": "Warehouse", "redis": "Redis"}
NAME_MAX = 100
SECRET_MAX = 1000
TEXT_MAX = 2000  # a URL or a DSN
EVENT_NAMES_MAX = 100
EVENT_NAME_MAX = 200
#: How long a replay asked for by a request may take; it resumes where it stopped.
REPLAY_SECONDS = 20.0
KAFKA_CHECK_SECONDS = 3.0
#: The settings shown masked (a password in a URL or DSN), as the CLI shows them.


class DestinationNameTaken(Exception):
    pass


class InvalidDestination(Exception):
    """What is wrong, by field (`name`, `settings.url`, `filters.events`...): 400."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))
        self.problems = problems


class ReplayUnavailable(Exception):
    """A replay cannot be done now (no Kafka, Kafka down, took too long): 503."""


class ReplayBusy(Exception):
    """A replay of this destination is under way in this process already: 409."""


@dataclass(frozen=True)
class SettingField:
    """One setting of a kind as the form asks for it."""

    name: str
    label: str
    input: str  # text, url, whole or decimal
    required: bool = False
    hint: str | None = None
    low: float = 0
    high: float = 0


_RETRY_FIELDS = (
    SettingField("max_attempts", "Attempts before giving up", "whole", low=1, high=1000,
                 hint=f"default {RetryPolicy.max_attempts}"),
    SettingField("retry_window_seconds", "Retry for at most (s)", "decimal", low=0,
                 high=7 * 86400, hint=f"default {RetryPolicy.retry_window_seconds:g}"),
)
FORM_FIELDS: dict[str, tuple[SettingField, ...]] = {
    "webhook": (
        SettingField("url", "URL", "url", required=True,
                     hint="http(s)://…; each event (or batch) is POSTed here as JSON"),
        SettingField("batch_size", "Events per request", "whole", low=1, high=1000,
                     hint='default 1: one event per POST; more: {"batch": [...]}'),
        SettingField("timeout_seconds", "Timeout (s)", "decimal", low=0.1, high=300,
                     hint="default 10"),
        *_RETRY_FIELDS),
    "warehouse": (
        SettingField("dsn", "Postgres DSN", "text", required=True,
                     hint="postgresql://user:password@host:5432/db (Redshift-compatible)"),
        SettingField("schema", "Schema", "text", hint="default clickstream; one table per "
                                                      "event type in it"),
        SettingField("batch_size", "Rows per load", "whole", low=1, high=100_000,
                     hint="default 1000"),
        SettingField("flush_seconds", "Load at least every (s)", "decimal", low=0, high=3600,
                     hint="default 1"),
        SettingField("load", "Load", "text",
                     hint="default stream: as events come; batch: by Airflow's warehouse "
                          "batch DAG, a time window at a time"),
        *_RETRY_FIELDS),
    "redis": (
        SettingField("url", "Redis URL", "text",
                     hint="redis://host:6379/0; empty: the platform's own Redis"),
        SettingField("key_prefix", "Key prefix", "text", hint="default clickstream"),
        *_RETRY_FIELDS),
}


@dataclass(frozen=True)
class DeliveryStats:
    """What the destination's workers have counted (they add theirs every few seconds)."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    replayed: int = 0
    last_delivered_at: Any = None
    last_error: str | None = None
    last_error_at: Any = None

    @property
    def waiting(self) -> int:
        """Dead letters not replayed yet."""
        return max(0, self.dead_lettered - self.replayed)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "waiting_for_replay": self.waiting}


@dataclass(frozen=True)
class DestinationState:
    destination: storage.Destination
    delivery: DeliveryStats

    @property
    def id(self) -> int:
        return self.destination.id

    @property
    def types(self) -> list[str]:
        return list(self.destination.filters.get("types") or [])

    @property
    def events(self) -> list[str]:
        return list(self.destination.filters.get("events") or [])

    @property
    def shown_settings(self) -> dict[str, Any]:
        return shown_settings(self.destination.settings)

    def to_json(self) -> dict[str, Any]:
        d = self.destination
        return {"id": d.id, "app_id": d.app_id, "name": d.name, "kind": d.kind,
                "enabled": d.enabled, "settings": self.shown_settings,
                "secret": "set" if d.secret else None,
                "filters": {"types": self.types, "events": self.events},
                "delivery": self.delivery.to_json()}


# -- validation ---------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    """What is wrong with a destination's name (the one events' `integrations` use)."""
    if not 1 <= len(name) <= NAME_MAX:
        return f"1 to {NAME_MAX} characters"
    return _text_problem(name)


def secret_problem(kind: str, secret: str) -> str | None:
    if kind != "webhook":
        return "only a webhook destination has a secret (it signs the requests)"
    if not 1 <= len(secret) <= SECRET_MAX:
        return f"1 to {SECRET_MAX} characters"
    return _text_problem(secret)


def settings_problems(kind: str, raw: dict[str, Any]) -> dict[str, str]:
    """What is wrong with a kind's settings, by setting name (`settings` for the whole);
    nothing when the clickstream workers can use them."""
    cls = SETTINGS_BY_KIND[kind]
    hints = {**typing.get_type_hints(cls), **typing.get_type_hints(RetryPolicy)}
    hints.pop("retry")
    problems: dict[str, str] = {}
    for name, value in raw.items():
        if name not in hints:
            problems[name] = (f"not a setting of a {kind} destination (they are: "
                              f"{', '.join(sorted(hints))})")
        elif (problem := _type_problem(hints[name], value)) is not None:
            problems[name] = problem
    for field in dataclasses.fields(cls):
        if (field.name not in raw and field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING):
            problems[field.name] = f"required for a {kind} destination"
    if problems:
        return problems
    try:
        parse_settings(kind, raw)
    except InvalidSettings as exc:
        # Its messages name the setting they are about: put each next to its field.
        message = str(exc)
        named = [n for n in sorted(hints, key=len, reverse=True) if n in message]
        return {named[0] if named else "settings": message}
    if kind == "webhook" and not urlsplit(raw["url"]).hostname:
        # clickstream checks the scheme only; a URL without a host cannot be posted to.
        return {"url": "an http(s) URL with a host name, e.g. https://example.com/hook"}
    return {}


def filters_problems(types: list[Any], events: list[Any]) -> dict[str, str]:
    problems = {}
    if any(t not in EVENT_TYPES for t in types):
        problems["types"] = f"event types among {', '.join(EVENT_TYPES)}"
    if len(events) > EVENT_NAMES_MAX:
        problems["events"] = f"at most {EVENT_NAMES_MAX} event names"
    elif not all(isinstance(e, str) and 1 <= len(e) <= EVENT_NAME_MAX and not _text_problem(e)
                 for e in events):
        problems["events"] = (f"event names of 1 to {EVENT_NAME_MAX} characters, none of "
                              "them a control character")
    return problems


def filters_of(types: list[str], events: list[str]) -> dict[str, list[str]]:
    """Stored as the CLI stores them: only the lists that limit something, each name
    once (checked ones: see filters_problems)."""
    return {k: list(dict.fromkeys(v)) for k, v in (("types", types), ("events", events)) if v}


def _type_problem(hint: Any, value: Any) -> str | None:
    """What is wrong with `value` as a `hint` (a settings class's annotation), if anything."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [_type_problem(arg, value) for arg in typing.get_args(hint)]
        return None if None in found else found[0]
    if hint is type(None):
        return None if value is None else "empty (null)"
    if hint is str:
        return _text_problem(value) if isinstance(value, str) else "a string"
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else "a whole number, 0 or more"
    if hint is float:
        ok = (isinstance(value, int | float) and not isinstance(value, bool)
              and math.isfinite(value) and value >= 0)
        return None if ok else "a number, 0 or more"
    if typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            return "an object of names and text values"
        for key, item in value.items():
            if _text_problem(key) or not isinstance(item, str) or _text_problem(item):
                return "an object of names and text values, without control characters"
        return None
    return f"not settable here ({hint})"


def _text_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "text"
    if len(value) > TEXT_MAX:
        return f"at most {TEXT_MAX} characters"
    if control_characters(value):
        return "no control characters (such as NUL or line breaks)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which JSON's \u escapes can carry
        return "valid Unicode text"
    return None


# -- reading and changing -------------------------------------------------------------


class Destinations:
    """The destinations in the clickstream database; `replay` needs the module's Kafka."""

    def __init__(self, clickstream: Clickstream, kafka_bootstrap: str | None, prefix: str,
                 partitions: int) -> None:
        self.clickstream = clickstream
        self.kafka_bootstrap = kafka_bootstrap
        self.prefix = prefix
        self.partitions = partitions
        self._replaying: set[int] = set()
        self._lock = threading.Lock()

    @property
    def can_replay(self) -> bool:
        return self.kafka_bootstrap is not None

    def listing(self, app_id: int) -> tuple[storage.App, list[DestinationState]]:
        with self.clickstream.connect() as conn:
            app = _app(conn, app_id)
            return app, [_state(conn, d) for d in storage.list_destinations(conn, app_id)]

    def get(self, app_id: int, destination_id: int) -> tuple[storage.App, DestinationState]:
        with self.clickstream.connect() as conn:
            app = _app(conn, app_id)
            return app, _state(conn, _destination(conn, app, destination_id))

    def create(self, app_id: int, name: str, kind: str, settings: dict[str, Any],
               secret: str | None, filters: dict[str, list[str]],
               enabled: bool) -> DestinationState:
        """A new destination (its settings checked beforehand); DestinationNameTaken."""
        try:
            with self.clickstream.connect() as conn:
                _app(conn, app_id)
                made = storage.create_destination(conn, app_id, name, kind, settings, secret,
                                                  filters, enabled=enabled)
                return _state(conn, made)
        except psycopg.errors.UniqueViolation:
            raise DestinationNameTaken(name) from None

    def change(self, app_id: int, destination_id: int, **changes: Any) -> DestinationState:
        """`enabled` and/or `filters` changed; the workers and router hear of it at once
        (the table's trigger notifies them)."""
        with self.clickstream.connect() as conn:
            app = _app(conn, app_id)
            _destination(conn, app, destination_id)
            try:
                storage.update_destination(conn, destination_id, **changes)
            except storage.NotFound:
                _gone(app, destination_id)
            return _state(conn, _destination(conn, app, destination_id))

    def delete(self, app_id: int, destination_id: int) -> DestinationState:
        """Delete it; its state as it was."""
        with self.clickstream.connect() as conn:
            app = _app(conn, app_id)
            found = _state(conn, _destination(conn, app, destination_id))
            try:
                storage.delete_destination(conn, destination_id)
            except storage.NotFound:
                _gone(app, destination_id)
            return found

    def replay(self, app_id: int, destination_id: int) -> int:
        """Send the destination's dead letters to it again; how many were sent."""
        self.get(app_id, destination_id)  # 404 for another app's destination
        if self.kafka_bootstrap is None or self.clickstream.dsn is None:
            raise ReplayUnavailable("Replaying needs the clickstream module's Kafka, which "
                                    "this Pilot is not given (KAFKA_BOOTSTRAP is empty).")
        with self._lock:
            if destination_id in self._replaying:
                raise ReplayBusy()
            self._replaying.add(destination_id)
        try:
            self._check_kafka()
            settings = ClickstreamSettings(
                kafka_bootstrap=self.kafka_bootstrap, postgres_dsn=self.clickstream.dsn,
                topic_prefix=self.prefix, topic_partitions=self.partitions)
            return replay_dead_letters(settings, destination_id, REPLAY_SECONDS)
        except storage.NotFound:
            abort(404, f"There is no destination {destination_id} any more.")
        except TimeoutError as exc:
            raise ReplayUnavailable(
                f"The replay did not finish in time ({exc}). Replay again to send the rest: "
                "what was sent already is not sent twice.") from None
        except KafkaException as exc:
            raise ReplayUnavailable(
                f"Kafka failed during the replay ({_reason(exc)}). Replay again in a "
                "moment: what was sent already is not sent twice.") from None
        except psycopg.OperationalError as exc:
            raise ClickstreamUnavailable(f"the clickstream database is unavailable: {exc}"
                                         ) from None
        finally:
            with self._lock:
                self._replaying.discard(destination_id)

    def _check_kafka(self) -> None:
        """Fail in seconds, not after the replay's own much longer timeouts."""
        admin = AdminClient({"bootstrap.servers": self.kafka_bootstrap,
                             "socket.connection.setup.timeout.ms": 2000,
                             # librdkafka's own lines through logging, hence JSON.
                             "logger": logging.getLogger("kafka")})
        try:
            admin.list_topics(timeout=KAFKA_CHECK_SECONDS)
        except KafkaException as exc:
            raise ReplayUnavailable(
                f"Kafka ({self.kafka_bootstrap}) does not answer: {_reason(exc)}. Try "
                "again in a moment.") from None


def _app(conn: Connection, app_id: int) -> storage.App:
    try:
        return storage.get_app(conn, app_id)
    except storage.NotFound:
        abort(404, f"There is no clickstream app {app_id}.")


def _destination(conn: Connection, app: storage.App,
                 destination_id: int) -> storage.Destination:
    """The app's destination; 404 for any other, so no id of another app is told."""
    try:
        found = storage.get_destination(conn, destination_id)
    except storage.NotFound:
        _gone(app, destination_id)
    if found.app_id != app.id:
        _gone(app, destination_id)
    return found


def _gone(app: storage.App, destination_id: int) -> typing.NoReturn:
    abort(404, f"App {app.name} has no destination {destination_id}.")


def _state(conn: Connection, destination: storage.Destination) -> DestinationState:
    try:
        row = storage.get_delivery_state(conn, destination.id)
    except storage.NotFound:  # made by plain SQL, without its row: nothing counted yet
        return DestinationState(destination, DeliveryStats())
    names = {f.name for f in dataclasses.fields(DeliveryStats)}
    return DestinationState(destination, DeliveryStats(**{k: v for k, v in row.items()
                                                          if k in names}))


def _reason(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else exc
    return error.str() if hasattr(error, "str") else str(error)
