"""Postgres access for apps, write keys, destinations and delivery state.

Plain functions over a psycopg connection; callers own the connection and its
transaction. Rows come back as small frozen dataclasses.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

KINDS = ("webhook", "warehouse", "redis")
KEY_PREFIX_LENGTH = 6


class NotFound(LookupError):
    """The app, key or destination asked for does not exist."""


@dataclass(frozen=True)
class App:
    id: int
    name: str
    rate_limit: int | None
    #: Browser origins allowed to post this app's events; ``None``: any origin.
    allowed_origins: tuple[str, ...] | None = None


@dataclass(frozen=True)
class WriteKey:
    id: int
    app_id: int
    key_prefix: str
    revoked: bool


@dataclass(frozen=True)
class Destination:
    id: int
    app_id: int
    name: str
    kind: str
    settings: dict[str, Any]
    # Excluded from repr so a destination can be logged without leaking the secret.
    secret: str | None = field(repr=False)
    enabled: bool
    filters: dict[str, Any]


def hash_write_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def new_write_key() -> str:
    return secrets.token_urlsafe(24)


# -- apps -------------------------------------------------------------------------


_APP_COLUMNS = "id, name, rate_limit, allowed_origins"


def _app(row: tuple[Any, ...]) -> App:
    app_id, name, rate_limit, origins = row
    return App(app_id, name, rate_limit, None if origins is None else tuple(origins))


def create_app(conn: psycopg.Connection, name: str, rate_limit: int | None = None,
               allowed_origins: tuple[str, ...] | None = None) -> App:
    """``allowed_origins`` as :func:`clickstream.cors.parse_origins` makes them."""
    row = conn.execute(
        "INSERT INTO clickstream.apps (name, rate_limit, allowed_origins) VALUES (%s, %s, %s)"
        f" RETURNING {_APP_COLUMNS}",
        (name, rate_limit, None if allowed_origins is None else list(allowed_origins)),
    ).fetchone()
    return _app(row)


def list_apps(conn: psycopg.Connection) -> list[App]:
    rows = conn.execute(f"SELECT {_APP_COLUMNS} FROM clickstream.apps ORDER BY id")
    return [_app(row) for row in rows]


def get_app(conn: psycopg.Connection, name_or_id: str | int) -> App:
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        row = conn.execute(
            f"SELECT {_APP_COLUMNS} FROM clickstream.apps WHERE id = %s", (int(name_or_id),)
        ).fetchone()
    else:
        row = conn.execute(
            f"SELECT {_APP_COLUMNS} FROM clickstream.apps WHERE name = %s", (name_or_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"no app {name_or_id!r}")
    return _app(row)


def set_rate_limit(conn: psycopg.Connection, app_id: int, rate_limit: int | None) -> None:
    conn.execute(
        "UPDATE clickstream.apps SET rate_limit = %s WHERE id = %s", (rate_limit, app_id)
    )


def set_allowed_origins(conn: psycopg.Connection, app_id: int,
                        origins: tuple[str, ...] | None) -> None:
    """``None`` allows any origin; an empty tuple allows none (server-side use only)."""
    conn.execute(
        "UPDATE clickstream.apps SET allowed_origins = %s WHERE id = %s",
        (None if origins is None else list(origins), app_id),
    )


# -- write keys -------------------------------------------------------------------


def add_write_key(conn: psycopg.Connection, app_id: int, key: str | None = None) -> str:
    """Store a new key for the app and return it; this is the only time it is known."""
    key = key or new_write_key()
    conn.execute(
        "INSERT INTO clickstream.write_keys (app_id, key_hash, key_prefix) VALUES (%s, %s, %s)",
        (app_id, hash_write_key(key), key[:KEY_PREFIX_LENGTH]),
    )
    return key


def list_write_keys(conn: psycopg.Connection, app_id: int) -> list[WriteKey]:
    rows = conn.execute(
        "SELECT id, app_id, key_prefix, revoked_at IS NOT NULL FROM clickstream.write_keys"
        " WHERE app_id = %s ORDER BY id",
        (app_id,),
    )
    return [WriteKey(*row) for row in rows]


def revoke_write_key(conn: psycopg.Connection, key_id: int) -> None:
    cur = conn.execute(
        "UPDATE clickstream.write_keys SET revoked_at = now()"
        " WHERE id = %s AND revoked_at IS NULL",
        (key_id,),
    )
    if cur.rowcount == 0:
        raise NotFound(f"no active write key {key_id}")


def app_for_write_key(conn: psycopg.Connection, key: str) -> App | None:
    row = conn.execute(
        "SELECT a.id, a.name, a.rate_limit, a.allowed_origins FROM clickstream.write_keys k"
        " JOIN clickstream.apps a ON a.id = k.app_id"
        " WHERE k.key_hash = %s AND k.revoked_at IS NULL",
        (hash_write_key(key),),
    ).fetchone()
    return _app(row) if row else None


# -- destinations -----------------------------------------------------------------

_DESTINATION_COLUMNS = "id, app_id, name, kind, settings, secret, enabled, filters"


def create_destination(
    conn: psycopg.Connection,
    app_id: int,
    name: str,
    kind: str,
    settings: dict[str, Any] | None = None,
    secret: str | None = None,
    filters: dict[str, Any] | None = None,
    enabled: bool = True,
) -> Destination:
    if kind not in KINDS:
        raise ValueError(f"unknown destination kind {kind!r}; choose one of {', '.join(KINDS)}")
    row = conn.execute(
        "INSERT INTO clickstream.destinations (app_id, name, kind, settings, secret, enabled,"
        f" filters) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_DESTINATION_COLUMNS}",
        (app_id, name, kind, Jsonb(settings or {}), secret, enabled, Jsonb(filters or {})),
    ).fetchone()
    conn.execute(
        "INSERT INTO clickstream.delivery_state (destination_id) VALUES (%s)", (row[0],)
    )
    return Destination(*row)


def get_destination(conn: psycopg.Connection, destination_id: int) -> Destination:
    row = conn.execute(
        f"SELECT {_DESTINATION_COLUMNS} FROM clickstream.destinations WHERE id = %s",
        (destination_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no destination {destination_id}")
    return Destination(*row)


def list_destinations(
    conn: psycopg.Connection, app_id: int | None = None, kind: str | None = None
) -> list[Destination]:
    rows = conn.execute(
        f"SELECT {_DESTINATION_COLUMNS} FROM clickstream.destinations"
        " WHERE (%(app)s::bigint IS NULL OR app_id = %(app)s)"
        " AND (%(kind)s::text IS NULL OR kind = %(kind)s) ORDER BY id",
        {"app": app_id, "kind": kind},
    )
    return [Destination(*row) for row in rows]


def update_destination(conn: psycopg.Connection, destination_id: int, **changes: Any) -> None:
    allowed = {"name", "settings", "secret", "enabled", "filters"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
    if not changes:
        return
    values = {k: Jsonb(v) if k in ("settings", "filters") else v for k, v in changes.items()}
    assignments = ", ".join(f"{column} = %({column})s" for column in values)
    cur = conn.execute(
        f"UPDATE clickstream.destinations SET {assignments}, updated_at = now()"
        " WHERE id = %(id)s",
        {**values, "id": destination_id},
    )
    if cur.rowcount == 0:
        raise NotFound(f"no destination {destination_id}")


def delete_destination(conn: psycopg.Connection, destination_id: int) -> None:
    cur = conn.execute("DELETE FROM clickstream.destinations WHERE id = %s", (destination_id,))
    if cur.rowcount == 0:
        raise NotFound(f"no destination {destination_id}")


# -- delivery state ---------------------------------------------------------------


@dataclass
class DeliveryCounts:
    """Counts a worker accumulates between flushes to ``delivery_state``."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    replayed: int = 0
    last_error: str | None = None

    def empty(self) -> bool:
        return not (self.delivered or self.retried or self.dead_lettered or self.replayed
                    or self.last_error)


def record_delivery_state(
    conn: psycopg.Connection, destination_id: int, counts: DeliveryCounts
) -> None:
    conn.execute(
        "INSERT INTO clickstream.delivery_state AS s (destination_id, delivered, retried,"
        " dead_lettered, replayed, last_delivered_at, last_error, last_error_at)"
        " SELECT d.id, %(delivered)s, %(retried)s, %(dead)s, %(replayed)s,"
        "  CASE WHEN %(delivered)s > 0 THEN now() END, %(error)s,"
        "  CASE WHEN %(error)s::text IS NOT NULL THEN now() END"
        " FROM clickstream.destinations d WHERE d.id = %(id)s"
        " ON CONFLICT (destination_id) DO UPDATE SET"
        "  delivered = s.delivered + EXCLUDED.delivered,"
        "  retried = s.retried + EXCLUDED.retried,"
        "  dead_lettered = s.dead_lettered + EXCLUDED.dead_lettered,"
        "  replayed = s.replayed + EXCLUDED.replayed,"
        "  last_delivered_at = COALESCE(EXCLUDED.last_delivered_at, s.last_delivered_at),"
        "  last_error = COALESCE(EXCLUDED.last_error, s.last_error),"
        "  last_error_at = COALESCE(EXCLUDED.last_error_at, s.last_error_at)",
        {
            "id": destination_id,
            "delivered": counts.delivered,
            "retried": counts.retried,
            "dead": counts.dead_lettered,
            "replayed": counts.replayed,
            "error": counts.last_error,
        },
    )


def get_delivery_state(conn: psycopg.Connection, destination_id: int) -> dict[str, Any]:
    cur = conn.execute(
        "SELECT * FROM clickstream.delivery_state WHERE destination_id = %s", (destination_id,)
    )
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"no destination {destination_id}")
    return dict(zip([c.name for c in cur.description], row, strict=True))
