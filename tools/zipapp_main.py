"""Bootstrap of heliostat.pyz: runs before anything else, with the standard library only.

Compiled dependencies cannot be imported from inside a zip, so the first run unpacks the
archive once into a per-build cache directory; later runs only add it to sys.path. The
archive carries wheels for several CPython versions and picks those of the running one.
"""

import json
import os
import platform
import shutil
import sys
import tempfile
import zipfile

BUILD = json.loads("""@BUILD@""")


def fail(message: str) -> None:
    sys.stderr.write(f"heliostat: {message}\n")
    raise SystemExit(2)


def check_interpreter() -> str:
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    supported = ", ".join(f"{t[2]}.{t[3:]}" for t in BUILD["python"])
    if sys.implementation.name != "cpython" or tag not in BUILD["python"]:
        fail(f"this heliostat.pyz runs on CPython {supported}; this is "
             f"{platform.python_implementation()} {platform.python_version()}")
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        fail(f"this heliostat.pyz runs on Linux x86_64; this is {sys.platform} "
             f"{platform.machine()}")
    libc, version = platform.libc_ver()
    if libc != "glibc" or _version(version) < _version(BUILD["min_glibc"]):
        fail(f"this heliostat.pyz needs glibc {BUILD['min_glibc']} or newer; found "
             f"{libc or 'another C library'} {version}")
    return tag


def _version(text: str) -> tuple:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def cache_root() -> str:
    candidates = [os.environ.get("HELIOSTAT_CACHE", "")]
    if os.environ.get("XDG_CACHE_HOME"):
        candidates.append(os.path.join(os.environ["XDG_CACHE_HOME"], "heliostat"))
    candidates.append(os.path.join(os.path.expanduser("~"), ".cache", "heliostat"))
    candidates.append(os.path.join(tempfile.gettempdir(), f"heliostat-{os.getuid()}"))
    for candidate in filter(None, candidates):
        try:
            os.makedirs(candidate, mode=0o700, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    fail("no writable cache directory; set HELIOSTAT_CACHE to one")
    return ""


def unpack(archive: str, target: str) -> None:
    """Unpack once per build; a concurrent first run loses the rename race harmlessly."""
    if os.path.isfile(os.path.join(target, ".complete")):
        return
    staging = tempfile.mkdtemp(prefix=".unpack-", dir=os.path.dirname(target))
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(staging)  # zipfile drops absolute and '..' parts of names
        open(os.path.join(staging, ".complete"), "w").close()
        if os.path.isdir(target):  # a half-unpacked leftover from a killed run
            shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
    except OSError:
        if not os.path.isfile(os.path.join(target, ".complete")):
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main() -> None:
    tag = check_interpreter()
    archive = os.path.dirname(os.path.abspath(__file__))
    # What the SSH transport ships to a Docker host: this very file (heliostat.cli_ssh).
    os.environ["HELIOSTAT_RUNNING_ZIPAPP"] = archive
    target = os.path.join(cache_root(), BUILD["id"])
    unpack(archive, target)
    sys.path[0:0] = [os.path.join(target, "app")] + [
        os.path.join(target, "lib", wheel) for wheel in BUILD["python"][tag]]
    from heliostat.cli import main as heliostat_main

    heliostat_main()


main()
