"""Writes the files of HELIOSTAT_FILES (a JSON object, absolute path -> content).

Marathon has no config maps, so its profile passes a service's files in this variable and
the entrypoint writes them before the service starts. Contents are never printed: a
failure names the path only.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def parse(text: str) -> dict[str, str]:
    """The files to write, checked: an object of absolute paths to strings."""
    try:
        files = json.loads(text)
    except ValueError as e:
        raise ValueError(f"HELIOSTAT_FILES is not JSON ({e.msg} at position {e.pos})") from None
    if not isinstance(files, dict):
        raise ValueError("HELIOSTAT_FILES must be a JSON object of path -> content")
    for path, content in files.items():
        if not os.path.isabs(path):
            raise ValueError(f"HELIOSTAT_FILES: {path!r} is not an absolute path")
        if not isinstance(content, str):
            raise ValueError(f"HELIOSTAT_FILES: the content of {path} is not a string")
    return files


def write(path: str, content: str) -> None:
    """Replaces `path` atomically, so a service never reads half a file."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".heliostat-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main() -> int:
    try:
        files = parse(os.environ.get("HELIOSTAT_FILES", "{}"))
    except ValueError as e:
        print(f"heliostat-entrypoint: {e}", file=sys.stderr)
        return 1
    for path, content in sorted(files.items()):
        try:
            write(path, content)
        except OSError as e:
            print(f"heliostat-entrypoint: cannot write {path}: {e.strerror}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
