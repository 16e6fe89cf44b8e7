"""npm tarballs as locked image inputs (tools/images/npm.py): the lock file, fetching into
the cache keyed on the integrity, and the check against the sha512 integrity before use.
Tarballs come from file:// URLs here, so nothing leaves the machine."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tools.images import npm
from tools.images.recipes import ROOT, discover

BROWSER_LOCK = ROOT / "tests" / "integration" / "clickstream" / "sdk_browser" / "package-lock.json"


def tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HELIOSTAT_DEV_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "image-inputs"


@pytest.fixture
def package(tmp_path: Path) -> npm.LockedPackage:
    path = tarball(tmp_path / "tracker-1.0.0.tgz", {"dist/umd/standalone.js": b"// loader\n"})
    return npm.LockedPackage("@acme/tracker", "1.0.0", path.as_uri(), integrity(path))


def test_a_matching_tarball_is_cached_under_its_integrity_and_linked_by_name(
        cache: Path, package: npm.LockedPackage, tmp_path: Path) -> None:
    into = tmp_path / "inputs"
    assert npm.fetch([package], into) == 1
    linked = into / "@acme" / "tracker.tgz"
    assert npm.file_integrity(linked) == package.integrity
    assert npm.stored(package.integrity) == cache / "sha512" / npm.sha512_hex(package.integrity)
    assert npm.stored(package.integrity).exists()
    Path(package.url.removeprefix("file://")).unlink()  # the second build needs no source
    assert npm.fetch([package], tmp_path / "again") == 0
    assert (tmp_path / "again" / "@acme" / "tracker.tgz").read_bytes() == linked.read_bytes()


def test_a_tarball_whose_integrity_differs_is_refused_and_not_kept(
        cache: Path, package: npm.LockedPackage, tmp_path: Path) -> None:
    tarball(Path(package.url.removeprefix("file://")), {"dist/umd/standalone.js": b"evil()\n"})
    with pytest.raises(npm.IntegrityError) as refused:
        npm.fetch([package], tmp_path / "inputs")
    message = str(refused.value)
    assert "@acme/tracker@1.0.0" in message and "refused" in message
    assert package.integrity in message and "the lock says" in message
    assert not npm.stored(package.integrity).exists()
    assert not any((cache / "partial").iterdir())
    assert not (tmp_path / "inputs" / "@acme" / "tracker.tgz").exists()


def test_a_damaged_cache_entry_is_fetched_again(
        cache: Path, package: npm.LockedPackage, tmp_path: Path) -> None:
    npm.fetch([package], tmp_path / "first")
    npm.stored(package.integrity).write_bytes(b"bit rot")
    npm.fetch([package], tmp_path / "second")
    assert npm.file_integrity(tmp_path / "second" / "@acme" / "tracker.tgz") == package.integrity


def test_only_sha512_integrities_are_accepted() -> None:
    sha1 = "sha1-" + base64.b64encode(hashlib.sha1(b"x").digest()).decode()
    for bad in (sha1, "sha512-not*base64", "sha512-" + base64.b64encode(b"short").decode(), ""):
        with pytest.raises(ValueError, match="sha512"):
            npm.sha512_hex(bad)
    digest = hashlib.sha512(b"x").digest()
    both = f"{sha1} sha512-{base64.b64encode(digest).decode()}"
    assert npm.sha512_hex(both) == digest.hex()


def test_the_lock_file_round_trips_and_names_a_bad_line(
        tmp_path: Path, package: npm.LockedPackage) -> None:
    lock = tmp_path / "npm.lock"
    npm.write_lock(lock, [package])
    assert npm.parse_lock(lock) == [package]
    good = lock.read_text()
    lock.write_text(good + "left-pad 1.3.0\n")
    with pytest.raises(ValueError, match=r"npm.lock:4: expected"):
        npm.parse_lock(lock)
    lock.write_text(good + f"../../etc 1.0.0 {package.url} {package.integrity}\n")
    with pytest.raises(ValueError, match=r"npm.lock:4: expected"):
        npm.parse_lock(lock)


def test_build_refuses_a_lock_that_pins_other_packages(package: npm.LockedPackage) -> None:
    npm.check_lock(["@acme/tracker@1.0.0"], [package], Path("npm.lock"))
    npm.check_lock(["@acme/tracker@^1"], [package], Path("npm.lock"))
    with pytest.raises(RuntimeError, match=re.escape("pins @acme/tracker@1.0.0 but the recipe "
                                                     "asks for 1.0.1")):
        npm.check_lock(["@acme/tracker@1.0.1"], [package], Path("npm.lock"))
    with pytest.raises(RuntimeError, match=re.escape("run `python3 -m tools.images lock`")):
        npm.check_lock(["@acme/tracker", "left-pad@1.3.0"], [package], Path("npm.lock"))


@pytest.mark.parametrize(("spec", "parsed"), [
    ("@segment/analytics-next@1.84.3", ("@segment/analytics-next", "1.84.3")),
    ("left-pad", ("left-pad", "")), ("left-pad@^1.3", ("left-pad", "^1.3"))])
def test_specs_split_into_name_and_range(spec: str, parsed: tuple[str, str]) -> None:
    assert npm.split_spec(spec) == parsed


def test_lock_takes_the_newest_match_and_keeps_public_registry_urls(
        cache: Path, package: npm.LockedPackage, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELIOSTAT_NPM_REGISTRY", "https://npm.mirror.example/")
    asked: list[list[str]] = []

    def npm_view(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        asked.append(command)
        versions = [{"version": v, "dist.integrity": package.integrity,
                     "dist.tarball": f"https://npm.mirror.example/@acme/tracker/-/tracker-{v}.tgz"}
                    for v in ("1.10.0", "1.9.0", "1.10.0-rc.1")]
        return subprocess.CompletedProcess(command, 0, json.dumps(versions), "")

    def download(url: str, timeout: float) -> Any:
        downloaded.append(url)
        return open(package.url.removeprefix("file://"), "rb")

    downloaded: list[str] = []
    monkeypatch.setattr(npm.subprocess, "run", npm_view)
    monkeypatch.setattr(npm.urllib.request, "urlopen", download)
    lock = tmp_path / "npm.lock"
    assert npm.lock(["@acme/tracker@^1"], lock) == 1
    (locked,) = npm.parse_lock(lock)
    assert locked.version == "1.10.0"
    assert locked.url == "https://registry.npmjs.org/@acme/tracker/-/tracker-1.10.0.tgz"
    assert "--registry=https://npm.mirror.example/" in asked[0]
    assert downloaded == ["https://npm.mirror.example/@acme/tracker/-/tracker-1.10.0.tgz"]


def test_the_gateway_serves_the_analytics_next_the_browser_test_pins() -> None:
    gateway = discover()["gateway"]
    (locked,) = npm.parse_lock(gateway.npm_lock)
    npm.check_lock(gateway.npm_packages, [locked], gateway.npm_lock)
    pinned = json.loads(BROWSER_LOCK.read_text())["packages"][f"node_modules/{locked.name}"]
    assert (locked.version, locked.integrity) == (pinned["version"], pinned["integrity"])
    assert locked.url.startswith("https://registry.npmjs.org/")
