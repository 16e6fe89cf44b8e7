"""Go programs: built on the build host from the Go module proxy (the module's content
checked by Go's checksum database), statically linked, cached per module version and
toolchain; the image gets the binary only, never the toolchain."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from tools.images import inputs_cache


def toolchain() -> str:
    return subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True,
                          check=True).stdout.strip()


def fetch(spec: dict) -> Path:
    """The folder holding the built binary of `spec` ({module, version, package?,
    ldflags?}); `ldflags` may use {version} (the version without its leading v)."""
    module, version = spec["module"], spec["version"]
    package = f"{module}/{spec['package']}" if spec.get("package") else module
    flags_key = hashlib.sha256(repr(spec.get("ldflags")).encode()).hexdigest()[:8]
    directory = (inputs_cache.cache_root() / "go"
                 / f"{module.replace('/', '_')}@{version}-{toolchain()}-{flags_key}")
    if not (directory / ".complete").exists():
        directory.mkdir(parents=True, exist_ok=True)
        cache = Path(os.environ.get("HELIOSTAT_DEV_CACHE", "/var/cache/heliostat-dev")) / "go"
        env = {**os.environ, "GOBIN": str(directory), "CGO_ENABLED": "0",
               "GOPATH": str(cache), "GOMODCACHE": str(cache / "mod"),
               "GOCACHE": str(cache / "build"), "GOFLAGS": "-mod=mod"}
        ldflags = " ".join(["-s", "-w", *(flag.format(version=version.lstrip("v"))
                                          for flag in spec.get("ldflags", []))])
        subprocess.run(["go", "install", "-trimpath", f"-ldflags={ldflags}",
                        f"{package}@{version}"], env=env, check=True)
        (directory / ".complete").touch()
    return directory
