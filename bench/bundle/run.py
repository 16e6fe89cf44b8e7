"""The bundle against its references, same images, same machine, same run. Prints JSON.

- size: our bundle against `docker save` of the same images in one archive through gzip
- build: our bundle cold (empty parts cache) and warm, against `docker save | gzip`
- verify: `heliostat bundle verify` throughput against `sha256sum` of the same file
- load: our `bundle load` into an empty engine against `docker load` of the gzip archive
  into an empty engine (each a fresh dockerd of its own; see tests/infra/docker_engines.py)

    PYTHONPATH=installer:. <venv>/bin/python bench/bundle/run.py [--level 19] [--work DIR]

Needs `make images` (every platform image in the local engine) and `make zipapp`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import docker

from heliostat import __version__
from heliostat.bundle.catalog_images import catalog_images
from heliostat.bundle.engine_export import PartsCache
from heliostat.bundle.loader import load_into_engine
from heliostat.bundle.reader import verify
from heliostat.bundle.writer import build_bundle
from tests.infra.docker_engines import IsolatedEngine

ROOT = Path(__file__).resolve().parents[2]


def timed(action):
    started = time.monotonic()
    result = action()
    return time.monotonic() - started, result


def gzip_archive(references: list[str], out: Path) -> None:
    with out.open("wb") as target:
        save = subprocess.Popen(["docker", "save", *references], stdout=subprocess.PIPE)
        subprocess.run(["gzip", "-6"], stdin=save.stdout, stdout=target, check=True)
        save.stdout.close()
        if save.wait() != 0:
            raise RuntimeError("docker save failed")


def in_empty_engine(work: Path, action) -> float:
    engine = IsolatedEngine(work / "engine")
    client = engine.start()
    try:
        seconds, _ = timed(lambda: action(client, engine))
        return seconds
    finally:
        client.close()
        engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, default=19, help="zstd level of our bundle")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-bundle-"))
    work.mkdir(parents=True, exist_ok=True)
    client = docker.from_env(timeout=600)
    references = {name: f"heliostat/{name}:{__version__}" for name in catalog_images()}
    installer = ROOT / "dist" / "heliostat.pyz"

    archive = work / "images.tar.gz"
    gzip_seconds, _ = timed(lambda: gzip_archive(list(references.values()), archive))
    bundle = work / "heliostat.bundle"
    parts = PartsCache(work / "parts")
    shutil.rmtree(parts.root, ignore_errors=True)
    cold, _ = timed(lambda: build_bundle(client, bundle, installer, parts, level=args.level,
                                         references=references))
    warm, _ = timed(lambda: build_bundle(client, bundle, installer, parts, level=args.level,
                                         references=references))

    sha_seconds, _ = timed(lambda: subprocess.run(["sha256sum", str(bundle)], check=True,
                                                  capture_output=True))
    verify_seconds, _ = timed(lambda: verify(bundle))

    def docker_load(engine_client, engine):
        with archive.open("rb") as source:
            subprocess.run(["docker", "-H", engine.url, "load", "-q"], stdin=source, check=True,
                           capture_output=True)

    docker_load_seconds = in_empty_engine(work, docker_load)
    our_load_seconds = in_empty_engine(work, lambda c, e: load_into_engine(bundle, c))

    bundle_bytes, gzip_bytes = bundle.stat().st_size, archive.stat().st_size
    mb = bundle_bytes / 1e6
    print(json.dumps({
        "images": len(references), "zstd_level": args.level,
        "size": {"bundle_bytes": bundle_bytes, "reference_docker_save_gzip_bytes": gzip_bytes,
                 "ratio": round(bundle_bytes / gzip_bytes, 3), "aim": "<= 0.6"},
        "build": {"bundle_cold_s": round(cold, 1), "bundle_warm_s": round(warm, 1),
                  "reference_docker_save_gzip_s": round(gzip_seconds, 1),
                  "ratio_cold": round(cold / gzip_seconds, 2)},
        "verify": {"bundle_mb_per_s": round(mb / verify_seconds, 1),
                   "reference_sha256sum_mb_per_s": round(mb / sha_seconds, 1),
                   "ratio": round(sha_seconds / verify_seconds, 3), "aim": ">= 0.8"},
        "load": {"bundle_load_s": round(our_load_seconds, 1),
                 "reference_docker_load_gzip_s": round(docker_load_seconds, 1),
                 "ratio": round(our_load_seconds / docker_load_seconds, 3), "aim": "<= 1.0"},
    }, indent=2))


if __name__ == "__main__":
    main()
