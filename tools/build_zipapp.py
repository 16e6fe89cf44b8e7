"""Build dist/heliostat.pyz: the installer, its profiles and modules, and its dependencies
for every supported CPython, in one file that needs nothing but `python3` to run.

Wheels are fetched once per (lock file, Python version) into a cache directory; a wheel
that serves several Python versions (pure Python, abi3) is stored once. The output is
reproducible: same inputs, same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "installer" / "requirements.lock"
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
SKIPPED = {"__pycache__", "images"}  # images/ holds build recipes, not runtime data


def fetch_wheels(cache: Path) -> dict[str, list[Path]]:
    lock_key = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    wheels: dict[str, list[Path]] = {}
    for version in PYTHONS:
        tag = "cp" + version.replace(".", "")
        directory = cache / f"{lock_key}-{tag}"
        if not (directory / ".complete").exists():
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
                       "--no-deps", "--python-version", version, "--implementation", "cp",
                       "--abi", tag, "--abi", "abi3", "--abi", "none", "--platform", "any",
                       *(arg for p in PLATFORMS for arg in ("--platform", p)),
                       "-r", str(LOCK), "-d", str(directory)]
            subprocess.run(command, check=True)
            (directory / ".complete").touch()
        wheels[tag] = sorted(directory.glob("*.whl"))
    return wheels


def min_glibc(wheels: list[Path]) -> str:
    """The newest glibc any chosen wheel needs: the oldest its platform tags allow."""
    needed = (2, 17)
    for wheel in wheels:
        tags = re.findall(r"manylinux_(\d+)_(\d+)_x86_64", wheel.name)
        if "manylinux2014" in wheel.name:
            tags.append(("2", "17"))
        if tags:
            needed = max(needed, min((int(a), int(b)) for a, b in tags))
    return f"{needed[0]}.{needed[1]}"


def add_file(archive: zipfile.ZipFile, name: str, data: bytes, digest: hashlib._Hash) -> None:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)
    digest.update(name.encode() + b"\0" + data)


def app_files() -> list[tuple[str, Path]]:
    files = [(f"app/heliostat/{p.relative_to(ROOT / 'installer' / 'heliostat')}", p)
             for p in sorted((ROOT / "installer" / "heliostat").rglob("*"))]
    for data in ("profiles", "bundles"):
        files += [(f"app/heliostat/_data/{p.relative_to(ROOT)}", p)
                  for p in sorted((ROOT / data).rglob("*"))]
    return [(name, path) for name, path in files
            if path.is_file() and not SKIPPED & set(Path(name).parts)]


def build(out: Path, cache: Path) -> dict:
    started = time.monotonic()
    wheels = fetch_wheels(cache)
    fetched = time.monotonic()
    # A wheel serving several Python versions is downloaded for each; store it once.
    all_wheels = sorted({w.name: w for ws in wheels.values() for w in ws}.values(),
                        key=lambda w: w.name)
    digest = hashlib.sha256()
    staging = out.with_suffix(".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(staging, "w") as archive:
        for name, path in app_files():
            add_file(archive, name, path.read_bytes(), digest)
        for wheel in all_wheels:
            with zipfile.ZipFile(wheel) as source:
                for member in sorted(source.namelist()):
                    if not member.endswith("/"):
                        add_file(archive, f"lib/{wheel.stem}/{member}", source.read(member),
                                 digest)
        build_info = {
            "id": digest.hexdigest()[:16],
            "min_glibc": min_glibc(all_wheels),
            "python": {tag: [w.stem for w in ws] for tag, ws in wheels.items()},
        }
        bootstrap = (ROOT / "tools" / "zipapp_main.py").read_text()
        bootstrap = bootstrap.replace("@BUILD@", json.dumps(build_info))
        add_file(archive, "__main__.py", bootstrap.encode(), hashlib.sha256())
    with out.open("wb") as target:
        target.write(b"#!/usr/bin/env python3\n")
        target.write(staging.read_bytes())
    staging.unlink()
    out.chmod(0o755)
    return {"file": str(out), "bytes": out.stat().st_size, "build_id": build_info["id"],
            "pythons": list(wheels), "min_glibc": build_info["min_glibc"],
            "fetch_seconds": round(fetched - started, 1),
            "build_seconds": round(time.monotonic() - fetched, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "heliostat.pyz")
    parser.add_argument("--cache", type=Path, required=True, help="wheel cache directory")
    args = parser.parse_args()
    result = build(args.out, args.cache)
    print(f"zipapp: {result['file']} ({result['bytes'] // 1024} KiB, CPython "
          f"{', '.join(result['pythons'])}, glibc >= {result['min_glibc']}); wheels "
          f"{result['fetch_seconds']}s, build {result['build_seconds']}s")


if __name__ == "__main__":
    main()
