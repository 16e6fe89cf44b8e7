"""Failed logins counted per account name and per client address, in Postgres, so the
limit holds however many replicas answer: more than `per_account` failures for one
name, or `per_address` from one address, within the window, and further tries are
refused (429 with Retry-After) — even with the right password — until old failures
age out of the window.

Each try is recorded *before* the password is checked and the count read afterwards,
so concurrent tries cannot all slip under the limit; a try that succeeds, or that the
limit refuses, takes its record back. A success also clears the account's failures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from pilot.database import Database
from pilot.settings import LoginLimits
from pilot.text import printable

KEY_MAX = 200


class TooManyAttempts(Exception):
    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"too many failed logins for this {scope}")
        self.scope = scope
        self.retry_after = retry_after


@dataclass(frozen=True)
class Attempt:
    account: str
    address: str
    ids: tuple[int, int]


class LoginLimiter:
    def __init__(self, database: Database, limits: LoginLimits) -> None:
        self.database = database
        self.limits = limits

    def begin(self, account: str, address: str | None) -> Attempt:
        """Record a try; TooManyAttempts when either count is over its limit."""
        account = printable(account.strip().lower(), KEY_MAX) or ""
        address = printable(address, KEY_MAX) or "unknown"
        window = self.limits.window_seconds
        with self.database.connect() as conn:
            conn.execute("DELETE FROM pilot.login_failures"
                         " WHERE at < now() - make_interval(secs => %s)", (window,))
            ids = []
            for scope, key in (("account", account), ("address", address)):
                row = conn.execute("INSERT INTO pilot.login_failures (scope, key)"
                                   " VALUES (%s, %s) RETURNING id", (scope, key)).fetchone()
                assert row is not None
                ids.append(row["id"])
        attempt = Attempt(account, address, (ids[0], ids[1]))
        refusal = None
        with self.database.connect() as conn:
            for scope, key, limit in (("account", account, self.limits.per_account),
                                      ("address", address, self.limits.per_address)):
                rows = conn.execute(
                    "SELECT at, clock_timestamp() AS now FROM pilot.login_failures"
                    " WHERE scope = %s AND key = %s AND id <> ALL(%s)"
                    " AND at > clock_timestamp() - make_interval(secs => %s) ORDER BY at DESC",
                    (scope, key, list(attempt.ids), window)).fetchall()
                if len(rows) >= limit:
                    counted: datetime = rows[limit - 1]["at"]
                    wait = (counted - rows[0]["now"]).total_seconds() + window
                    refusal = TooManyAttempts(scope, max(1, math.ceil(wait)))
                    break
            if refusal is not None:
                conn.execute("DELETE FROM pilot.login_failures WHERE id = ANY(%s)",
                             (list(attempt.ids),))
        if refusal is not None:
            raise refusal
        return attempt

    def succeeded(self, attempt: Attempt) -> None:
        with self.database.connect() as conn:
            conn.execute("DELETE FROM pilot.login_failures WHERE id = ANY(%s)"
                         " OR (scope = 'account' AND key = %s)",
                         (list(attempt.ids), attempt.account))
