"""Accounts: a name, a role (`admin` acts, `viewer` looks) and a password hash."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg

from pilot.database import Connection

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
FIRST_ADMIN = "admin"
USERNAME = re.compile(r"[a-z][a-z0-9._-]{0,62}")
PASSWORD_MIN, PASSWORD_MAX = 12, 1024


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: Role
    created_at: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "role": self.role,
                "created_at": self.created_at.isoformat() if self.created_at else None}


@dataclass(frozen=True)
class Credentials:
    user: User
    password_hash: str


def username_problem(username: str) -> str | None:
    if not USERNAME.fullmatch(username):
        return ("1 to 63 characters: lower-case letters, digits, `.`, `_` and `-`, "
                "starting with a letter")
    return None


def password_problem(password: str) -> str | None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"{PASSWORD_MIN} to {PASSWORD_MAX} characters"
    return None


def create_first_admin(conn: psycopg.Connection[Any], password_hash: Callable[[], str]) -> bool:
    """Create `admin` unless it exists; True when it was created now."""
    found = conn.execute("SELECT 1 FROM pilot.users WHERE username = %s",
                         (FIRST_ADMIN,)).fetchone()
    if found is not None:
        return False
    conn.execute("INSERT INTO pilot.users (username, role, password_hash) VALUES (%s, %s, %s)",
                 (FIRST_ADMIN, "admin", password_hash()))
    return True


def credentials(conn: Connection, username: str) -> Credentials | None:
    row = conn.execute("SELECT id, username, role, created_at, password_hash FROM pilot.users"
                       " WHERE username = %s", (username,)).fetchone()
    if row is None:
        return None
    return Credentials(_user(row), row["password_hash"])


def get(conn: Connection, user_id: int) -> User | None:
    row = conn.execute("SELECT id, username, role, created_at FROM pilot.users WHERE id = %s",
                       (user_id,)).fetchone()
    return None if row is None else _user(row)


def all_users(conn: Connection) -> list[User]:
    rows = conn.execute("SELECT id, username, role, created_at FROM pilot.users"
                        " ORDER BY username").fetchall()
    return [_user(row) for row in rows]


class UsernameTaken(Exception):
    pass


def create(conn: Connection, username: str, role: Role, password_hash: str) -> User:
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO pilot.users (username, role, password_hash) VALUES (%s, %s, %s)"
                " RETURNING id, username, role, created_at",
                (username, role, password_hash)).fetchone()
    except psycopg.errors.UniqueViolation:
        raise UsernameTaken(username) from None
    assert row is not None
    return _user(row)


def set_password(conn: Connection, user_id: int, password_hash: str) -> None:
    conn.execute("UPDATE pilot.users SET password_hash = %s, password_changed_at = now()"
                 " WHERE id = %s", (password_hash, user_id))


class LastAdmin(Exception):
    pass


def delete(conn: Connection, user_id: int) -> bool:
    """Delete the account (its sessions and tokens go with it); False if there was none.
    LastAdmin if it is the only admin: the admins' rows are locked while counting, so two
    admins deleting each other at once cannot leave none."""
    admins = [row["id"] for row in conn.execute(
        "SELECT id FROM pilot.users WHERE role = 'admin' ORDER BY id FOR UPDATE").fetchall()]
    if admins == [user_id]:
        raise LastAdmin()
    return conn.execute("DELETE FROM pilot.users WHERE id = %s", (user_id,)).rowcount > 0


def _user(row: dict[str, Any]) -> User:
    return User(id=row["id"], username=row["username"], role=row["role"],
                created_at=row.get("created_at"))
