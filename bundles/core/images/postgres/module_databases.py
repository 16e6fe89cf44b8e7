"""Makes sure every module's database and user exist, with the password of its secret.

POSTGRES_MODULE_DATABASES is `database:user:secret,...`; each password is read from
`<secrets dir>/<secret>`, the superuser's from POSTGRES_SUPERUSER_PASSWORD_FILE.
POSTGRES_MONITORING_USERS (`user,...`, users of those modules) are granted pg_monitor, which
reads the statistics views and no data: the monitoring module's exporter. Runs at
every start against a server that only listens on a private socket (PGHOST), through
psql as the `postgres` OS user. Passwords are sent as SCRAM verifiers computed here, so
no password is ever in a statement, a log line or an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
SECRET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
SCRAM_ITERATIONS = 4096
SUPERUSER = "postgres"


@dataclass(frozen=True)
class ModuleDatabase:
    database: str
    user: str
    secret: str


@dataclass(frozen=True)
class Role:
    can_login: bool
    verifier: str
    monitors: bool = False  # a member of pg_monitor


def parse(spec: str) -> list[ModuleDatabase]:
    """`database:user:secret,...` (blanks and empty items ignored), each name checked."""
    entries = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 3:
            raise ValueError(f"POSTGRES_MODULE_DATABASES: {item!r} is not database:user:secret")
        database, user, secret = parts
        for what, value in (("database", database), ("user", user)):
            if not IDENTIFIER.fullmatch(value):
                raise ValueError(f"POSTGRES_MODULE_DATABASES: {what} name {value!r} must be "
                                 "lower-case letters, digits and _ (at most 63)")
        if not SECRET_NAME.fullmatch(secret):
            raise ValueError(f"POSTGRES_MODULE_DATABASES: {secret!r} is not a secret name")
        entries.append(ModuleDatabase(database, user, secret))
    return entries


def parse_monitoring_users(spec: str, entries: list[ModuleDatabase]) -> list[str]:
    """`user,...`: each one a module database's user."""
    users = [u.strip() for u in spec.split(",") if u.strip()]
    known = {e.user for e in entries}
    for user in users:
        if user not in known:
            raise ValueError(f"POSTGRES_MONITORING_USERS: {user!r} is not the user of a "
                             "module database")
    return users


def read_password(path: str) -> str:
    """The file's content without its trailing newline; an empty password is refused."""
    try:
        with open(path, encoding="utf-8") as f:
            password = f.read().rstrip("\r\n")
    except OSError as e:
        raise ValueError(f"cannot read the password file {path}: {e.strerror}") from None
    if not password:
        raise ValueError(f"{path} is empty")
    return password


def _normalized(password: str) -> bytes:
    # Postgres applies SASLprep; for ASCII it changes nothing, NFKC covers the common rest.
    return (password if password.isascii() else unicodedata.normalize("NFKC", password)).encode()


def scram_verifier(password: str, salt: bytes | None = None,
                   iterations: int = SCRAM_ITERATIONS) -> str:
    """What Postgres stores for a scram-sha-256 password (RFC 5803 format)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", _normalized(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    return (f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
            f"${b64(stored_key).decode()}:{b64(server_key).decode()}")


def verifier_matches(password: str, verifier: str) -> bool:
    """Whether `verifier` (as in pg_authid) is one of `password`."""
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$[^:]+:.+", verifier or "")
    if not match:
        return False
    expected = scram_verifier(password, base64.b64decode(match[2]), int(match[1]))
    return hmac.compare_digest(expected, verifier)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def statements(entries: list[ModuleDatabase], passwords: dict[str, str],
               roles: dict[str, Role], databases: set[str],
               monitoring_users: Sequence[str] = ()) -> list[str]:
    """The SQL that brings the server to `entries`; empty when it is there already.
    `passwords` maps a role to its password; `roles` and `databases` are what exists."""
    sql = []
    for user, password in passwords.items():
        role = roles.get(user)
        if role and role.can_login and verifier_matches(password, role.verifier):
            continue
        verb = "ALTER" if role else "CREATE"
        sql.append(f"{verb} ROLE {quote_identifier(user)} WITH LOGIN PASSWORD "
                   f"{quote_literal(scram_verifier(password))};")
    for entry in entries:
        if entry.database in databases:
            continue
        databases.add(entry.database)
        db = quote_identifier(entry.database)
        sql.append(f"CREATE DATABASE {db} OWNER {quote_identifier(entry.user)};")
        # Each module sees its own database only.
        sql.append(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC;")
    for user in monitoring_users:
        role = roles.get(user)
        if not (role and role.monitors):
            sql.append(f"GRANT pg_monitor TO {quote_identifier(user)};")
    return sql


def passwords_of(entries: list[ModuleDatabase], secrets_dir: str,
                 superuser_file: str | None) -> dict[str, str]:
    passwords = {SUPERUSER: read_password(superuser_file)} if superuser_file else {}
    for entry in entries:
        password = read_password(os.path.join(secrets_dir, entry.secret))
        if passwords.setdefault(entry.user, password) != password:
            raise ValueError(f"user {entry.user} is given two different passwords")
    return passwords


def _psql(args: list[str], sql: str) -> str:
    result = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres",
                             *args], input=sql, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}")
    return result.stdout


def _rows(sql: str, width: int) -> list[list[str]]:
    # Fields and rows all end in NUL, so no name can break the parsing.
    fields = _psql(["-At", "-z", "-0"], sql).split("\0")[:-1]
    return [fields[i:i + width] for i in range(0, len(fields), width)]


def _existing() -> tuple[dict[str, Role], set[str]]:
    roles = {name: Role(can_login == "t", verifier, monitors == "t")
             for name, can_login, verifier, monitors in _rows(
                 "SELECT rolname, rolcanlogin, coalesce(rolpassword, ''),"
                 " pg_has_role(oid, 'pg_monitor', 'MEMBER') FROM pg_authid;", 4)}
    databases = {name for (name,) in _rows("SELECT datname FROM pg_database;", 1)}
    return roles, databases


def main() -> int:
    try:
        entries = parse(os.environ.get("POSTGRES_MODULE_DATABASES", ""))
        passwords = passwords_of(entries, os.environ.get("HELIOSTAT_SECRETS_DIR", "/run/secrets"),
                                 os.environ.get("POSTGRES_SUPERUSER_PASSWORD_FILE") or None)
        monitoring = parse_monitoring_users(os.environ.get("POSTGRES_MONITORING_USERS", ""),
                                            entries)
        roles, databases = _existing()
        sql = statements(entries, passwords, roles, databases, monitoring)
        if sql:
            # Failing statements carry verifiers: keep them out of the server log too.
            _psql([], "SET log_min_error_statement = panic;\n" + "\n".join(sql) + "\n")
    except (ValueError, OSError, RuntimeError) as e:
        print(f"postgres: {e}", file=sys.stderr)
        return 1
    names = ", ".join(sorted({e.database for e in entries})) or "none"
    print(f"postgres: module databases ready ({names}); {len(sql)} change(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
