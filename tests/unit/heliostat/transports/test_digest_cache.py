"""Digests remembered on the workstation: reused while the file is unchanged, recomputed
when it changes."""

import hashlib
import json
import os

from heliostat.transports.digest_cache import cached_sha256


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(tmp_path):
    file, cache = tmp_path / "b.bundle", tmp_path / "cache" / "sha256.json"
    file.write_bytes(b"first")
    assert cached_sha256(file, cache) == hashlib.sha256(b"first").hexdigest()

    entries = json.loads(cache.read_text())
    entries[str(file.resolve())]["sha256"] = "remembered"
    cache.write_text(json.dumps(entries))
    assert cached_sha256(file, cache) == "remembered"  # taken from the cache, not the file

    file.write_bytes(b"second")
    stat = file.stat()
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cached_sha256(file, cache) == hashlib.sha256(b"second").hexdigest()


def test_a_damaged_or_unwritable_cache_only_costs_a_read(tmp_path):
    file = tmp_path / "f"
    file.write_bytes(b"x")
    damaged = tmp_path / "damaged.json"
    damaged.write_text("{not json")
    assert cached_sha256(file, damaged) == hashlib.sha256(b"x").hexdigest()
    blocked = tmp_path / "a-file" / "sha256.json"
    (tmp_path / "a-file").write_text("not a directory")
    assert cached_sha256(file, blocked) == hashlib.sha256(b"x").hexdigest()
