"""API tokens for `/api/v1`: `Authorization: Bearer pilot_<random>`.

A token is shown once, when it is made; Pilot keeps its sha256 (the token is 256
random bits, so a fast hash is as good as a slow one) and its first characters, to
tell tokens apart. A token acts as its owner, with the owner's role or a lesser one;
it stops working when revoked, when it expires, or when its owner is deleted.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pilot.accounts import Role, User
from pilot.database import Connection

PREFIX = "pilot_"
SHOWN = len(PREFIX) + 6  # characters a listing shows: `pilot_Ab3dE9…`
NAME_MAX = 100
MAX_DAYS = 3650


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: Role
    prefix: str
    owner: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= datetime.now(timezone.utc):
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {"id": self.id, "name": self.name, "role": self.role, "prefix": self.prefix,
                "owner": self.owner, "state": self.state, "created_at": when(self.created_at),
                "expires_at": when(self.expires_at), "last_used_at": when(self.last_used_at),
                "revoked_at": when(self.revoked_at)}


@dataclass(frozen=True)
class Authenticated:
    token_id: int
    user: User  # with the token's role, which may be less than the owner's


def create(conn: Connection, owner: User, name: str, role: Role,
           days: int | None) -> tuple[str, TokenInfo]:
    """(the token itself, to show once; what is kept of it)."""
    token = PREFIX + secrets.token_urlsafe(32)
    expires = datetime.now(timezone.utc) + timedelta(days=days) if days else None
    row = conn.execute(
        "INSERT INTO pilot.api_tokens (user_id, name, role, prefix, token_hash, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (owner.id, name, role, token[:SHOWN], _hash(token), expires)).fetchone()
    assert row is not None
    info = find(conn, row["id"])
    assert info is not None
    return token, info


def authenticate(conn: Connection, token: str) -> Authenticated | None:
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = conn.execute(
        "UPDATE pilot.api_tokens t SET last_used_at = now() FROM pilot.users u"
        " WHERE t.token_hash = %s AND t.user_id = u.id AND t.revoked_at IS NULL"
        " AND (t.expires_at IS NULL OR t.expires_at > now())"
        " RETURNING t.id, t.role, u.id AS user_id, u.username, u.role AS user_role",
        (_hash(token),)).fetchone()
    if row is None:
        return None
    # A viewer's old admin token cannot outrank its owner.
    role: Role = "admin" if row["role"] == row["user_role"] == "admin" else "viewer"
    return Authenticated(row["id"], User(row["user_id"], row["username"], role))


def listing(conn: Connection, owner: User | None) -> list[TokenInfo]:
    """Tokens of `owner`, or everybody's (None), newest first."""
    where, args = ("WHERE t.user_id = %s", (owner.id,)) if owner else ("", ())
    rows = conn.execute(f"{_SELECT} {where} ORDER BY t.id DESC", args).fetchall()
    return [_info(row) for row in rows]


def find(conn: Connection, token_id: int) -> TokenInfo | None:
    row = conn.execute(f"{_SELECT} WHERE t.id = %s", (token_id,)).fetchone()
    return None if row is None else _info(row)


def owner_id(conn: Connection, token_id: int) -> int | None:
    row = conn.execute("SELECT user_id FROM pilot.api_tokens WHERE id = %s",
                       (token_id,)).fetchone()
    return None if row is None else row["user_id"]


def revoke(conn: Connection, token_id: int) -> None:
    conn.execute("UPDATE pilot.api_tokens SET revoked_at = coalesce(revoked_at, now())"
                 " WHERE id = %s", (token_id,))


_SELECT = ("SELECT t.id, t.name, t.role, t.prefix, u.username AS owner, t.created_at,"
           " t.expires_at, t.last_used_at, t.revoked_at"
           " FROM pilot.api_tokens t JOIN pilot.users u ON u.id = t.user_id")


def _info(row: dict[str, Any]) -> TokenInfo:
    return TokenInfo(**row)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
