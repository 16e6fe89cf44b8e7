"""Writes redis-server's password to a private include file and prints the file's path.

redis.conf cannot read a file's content and a password on the command line shows in ps,
so the entrypoint passes `--include <this file>` instead. The password comes from
REDIS_PASSWORD_FILE (the mounted secret); the file lives in a tmpfs when there is one.
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile

DEFAULT_PASSWORD_FILE = "/run/secrets/redis-password"
PREFIX = "heliostat-redis-auth-"


def quoted(password: str) -> str:
    """`password` as a double-quoted redis.conf string: anything but printable ASCII,
    and the quote and backslash themselves, is written as \\xHH."""
    out = []
    for byte in password.encode():
        char = chr(byte)
        if 0x20 <= byte < 0x7F and char not in '"\\':
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def runtime_dir() -> str:
    for candidate in ("/dev/shm", tempfile.gettempdir()):
        if os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    raise OSError("no writable directory for the password file")


def write_include(password: str, directory: str) -> str:
    # Only the current file is kept: earlier starts' files are removed.
    for old in glob.glob(os.path.join(directory, PREFIX + "*.conf")):
        if os.stat(old).st_uid == os.getuid():
            os.unlink(old)
    fd, path = tempfile.mkstemp(prefix=PREFIX, suffix=".conf", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.write(f"requirepass {quoted(password)}\n")
    return path


def main() -> int:
    password_file = os.environ.get("REDIS_PASSWORD_FILE") or DEFAULT_PASSWORD_FILE
    try:
        with open(password_file, encoding="utf-8") as f:
            password = f.read().rstrip("\r\n")
        if not password:
            raise ValueError(f"{password_file} is empty")
        print(write_include(password, runtime_dir()))
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else e
        print(f"redis: cannot set the password from {password_file}: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
