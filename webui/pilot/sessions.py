"""Login sessions, kept in Postgres so that every replica knows them and logout ends them.

The browser holds a random session id, signed and time-stamped with the secret key
(a forged or stale cookie is refused before any query); the database holds only the
id's sha256, the account and the expiry. Each login makes a new id, so an id planted
in a browser before its user signs in is worth nothing (session fixation).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from itsdangerous import BadSignature, URLSafeTimedSerializer

from pilot.accounts import User
from pilot.database import Connection
from pilot.text import printable

COOKIE = "pilot_session"


@dataclass(frozen=True)
class Session:
    id: str
    user: User
    expires_at: datetime

    @property
    def id_hash(self) -> bytes:
        return _hash(self.id)


class SessionCodec:
    """Signs session ids for the cookie."""

    def __init__(self, secret_key: str, max_age_seconds: int) -> None:
        self._signer = URLSafeTimedSerializer(secret_key, salt="pilot-session")
        self.max_age = max_age_seconds

    def cookie_value(self, session_id: str) -> str:
        return self._signer.dumps(session_id)

    def session_id(self, cookie: str) -> str | None:
        try:
            value = self._signer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # SignatureExpired is one too
            return None
        return value if isinstance(value, str) else None


def start(conn: Connection, user: User, hours: int, remote: str | None,
          user_agent: str | None) -> Session:
    session_id = secrets.token_urlsafe(32)
    expires = datetime.now(timezone.utc) + timedelta(hours=hours)
    conn.execute("INSERT INTO pilot.sessions (id_hash, user_id, expires_at, remote, user_agent)"
                 " VALUES (%s, %s, %s, %s, %s)",
                 (_hash(session_id), user.id, expires, printable(remote, 100),
                  printable(user_agent, 300)))
    conn.execute("DELETE FROM pilot.sessions WHERE expires_at < now()")
    return Session(session_id, user, expires)


def find(conn: Connection, session_id: str) -> Session | None:
    """The session if it exists and has not expired."""
    row = conn.execute("SELECT u.id, u.username, u.role, u.created_at, s.expires_at"
                       " FROM pilot.sessions s JOIN pilot.users u ON u.id = s.user_id"
                       " WHERE s.id_hash = %s AND s.expires_at > now()",
                       (_hash(session_id),)).fetchone()
    if row is None:
        return None
    user = User(row["id"], row["username"], row["role"], row["created_at"])
    return Session(session_id, user, row["expires_at"])


def end(conn: Connection, session_id: str) -> None:
    conn.execute("DELETE FROM pilot.sessions WHERE id_hash = %s", (_hash(session_id),))


def end_all(conn: Connection, user_id: int, keep: str | None = None) -> None:
    """Every session of the account, but `keep` (after a password change)."""
    conn.execute("DELETE FROM pilot.sessions WHERE user_id = %s AND id_hash <> %s",
                 (user_id, _hash(keep) if keep else b""))


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8")).digest()
