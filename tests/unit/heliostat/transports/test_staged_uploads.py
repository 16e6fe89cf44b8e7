"""The pure parts of staging a file on the host: names, resume offsets, digests, the meter."""

import hashlib

from heliostat.file_digest import sha256_file
from heliostat.transports.upload import (
    Staged,
    UploadMeter,
    resume_offset,
    staged_name,
    superseded,
)


def test_a_staged_name_carries_the_digest(tmp_path):
    path = tmp_path / "heliostat.pyz"
    path.write_bytes(b"x" * 3_000_000)
    digest = sha256_file(path)
    assert digest == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert staged_name(path.name, digest) == f"{digest[:16]}-heliostat.pyz"


def test_resuming_continues_from_the_hosts_partial_copy():
    assert resume_offset(1000, None) == 0
    assert resume_offset(1000, 0) == 0
    assert resume_offset(1000, 400) == 400
    assert resume_offset(1000, 1000) == 1000  # complete but not yet verified
    assert resume_offset(1000, 1500) == 0  # cannot be a prefix of this file: start over


def test_a_file_the_host_had_is_reported_as_already_there():
    assert Staged("/s/f", 10, "d", sent_bytes=0, resumed_from=10, seconds=0.1).already_there
    assert not Staged("/s/f", 10, "d", sent_bytes=6, resumed_from=4, seconds=0.1).already_there


def test_the_meter_reports_a_resume_then_at_most_once_a_second():
    lines: list[str] = []
    meter = UploadMeter("uploading b", lines.append, every=3600)
    meter(50_000_000, 100_000_000)
    meter(60_000_000, 100_000_000)  # the first report after the start
    meter(70_000_000, 100_000_000)  # too soon
    meter(100_000_000, 100_000_000)  # the caller reports the end itself
    assert lines[0] == "uploading b: resuming at 50.0 of 100.0 MB"
    assert len(lines) == 2 and lines[1].startswith("uploading b: 60% of 100.0 MB, ")
    assert "ETA" in lines[1]


def test_a_new_version_replaces_the_old_ones_of_the_same_name_only():
    new, old, other = "a" * 64, "b" * 64, "c" * 64
    day = 86400.0
    entries = [(staged_name("x.bundle", new), 0.0),
               (staged_name("x.bundle", old), 0.0),
               (staged_name("x.bundle", other) + ".partial", 10 * day - 60),  # recent
               (staged_name("x.bundle", "d" * 64) + ".partial", 0.0),  # abandoned
               (staged_name("heliostat.pyz", old), 0.0),
               ("notes.txt", 0.0)]
    assert superseded(entries, "x.bundle", new, now=10 * day) == sorted([
        staged_name("x.bundle", old), staged_name("x.bundle", "d" * 64) + ".partial"])
