"""The release ledger and its lock, on real files and with real processes.

Processes are forked (not spawned) so that dozens of them start in well under a second.
The only patched calls are `os.write` and `os.fsync`, to inject a failing write; a real
full filesystem (a 64 KiB tmpfs) is used too where this runs as root.
"""

import errno
import hashlib
import json
import multiprocessing
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from heliostat import ledger_store
from heliostat.ledger import Ledger, RevisionPending, UnknownRevision
from heliostat.ledger_lock import Holder, LeaseKeeper, LeaseLost, LedgerError, LockHeld
from heliostat.ledger_store import FileLedgerStore, LedgerCorrupt, LedgerWriteError

fork = multiprocessing.get_context("fork")
SECRET = "s3cr3t-generated-value-0123456789"


def record(ledger, **overrides):
    fields = dict(origin="cli", description="install", bundle_version="1.0.0",
                  bundle_digest="sha256:b1", config={"name": "acme"},
                  secrets={"postgres-admin": SECRET},
                  manifests={"compose.yaml": "services: {}\n"},
                  images={"event-api": "sha256:e1"})
    return ledger.record_revision(**{**fields, **overrides})


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


# --- the file store ---------------------------------------------------------------------


def test_documents_are_private_files_in_a_private_directory(tmp_path):
    store = FileLedgerStore(tmp_path / "var" / "acme")
    store.write("revision-000001.json", b"{}")
    store.acquire(Holder.this_process("install"), ttl=60)
    for directory in (tmp_path / "var", tmp_path / "var" / "acme"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("revision-000001.json", "lease.json", "lock"):
        assert stat.S_IMODE((store.root / name).stat().st_mode) == 0o600, name
    assert store.names() == ["revision-000001.json"]  # not the lock's files
    assert store.read("revision-000001.json") == b"{}"
    assert store.read("revision-000002.json") is None


def test_a_missing_ledger_reads_as_empty_and_is_not_created_by_reading(tmp_path):
    store = FileLedgerStore(tmp_path / "acme")
    assert store.names() == [] and Ledger(store).revisions() == []
    assert not store.root.exists()


@pytest.mark.parametrize("name", ["../escape", ".hidden", "a/b", "", "lease.json", "lock"])
def test_names_outside_the_ledger_or_the_locks_own_are_refused(tmp_path, name):
    with pytest.raises(ValueError):
        FileLedgerStore(tmp_path).write(name, b"x")
    assert not (tmp_path.parent / "escape").exists()


def test_a_write_that_fails_part_way_keeps_the_previous_document(tmp_path, monkeypatch):
    store = FileLedgerStore(tmp_path)
    store.write("doc.json", b"old " * 100)
    real_write = os.write

    def disk_fills_up(fd, data):  # writes some, then the disk is full
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ledger_store.os, "write", disk_fills_up)
    with pytest.raises(LedgerWriteError, match=r"doc\.json: No space left on device; "
                                               r"the ledger keeps its previous state"):
        store.write("doc.json", b"new " * 1000)
    monkeypatch.undo()
    assert store.read("doc.json") == b"old " * 100
    assert sorted(os.listdir(tmp_path)) == ["doc.json"]  # no temp file left behind


def test_a_failing_fsync_keeps_the_previous_document(tmp_path, monkeypatch):
    store = FileLedgerStore(tmp_path)
    store.write("doc.json", b"old")

    def broken_fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(ledger_store.os, "fsync", broken_fsync)
    with pytest.raises(LedgerWriteError, match="Input/output error"):
        store.write("doc.json", b"new")
    monkeypatch.undo()
    assert store.read("doc.json") == b"old"
    assert sorted(os.listdir(tmp_path)) == ["doc.json"]


def _rewrite_forever(root, started):
    store = FileLedgerStore(root)
    documents = [b"A" * 300_000, b"B" * 300_000]
    for index in range(1_000_000):
        store.write("doc.json", documents[index % 2])
        started.set()


def test_a_writer_killed_mid_write_leaves_a_whole_document(tmp_path):
    for attempt in range(6):
        started = fork.Event()
        writer = fork.Process(target=_rewrite_forever, args=(tmp_path, started))
        writer.start()
        assert started.wait(10)
        time.sleep(0.013 * attempt)  # land the kill at different points
        writer.kill()
        writer.join()
        assert FileLedgerStore(tmp_path).read("doc.json") in (b"A" * 300_000, b"B" * 300_000)
    # Killed writers may leave their temp file; it is never taken for a document.
    assert FileLedgerStore(tmp_path).names() == ["doc.json"]


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs: a real filesystem that runs out of space."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_filesystem_fails_cleanly_and_corrupts_nothing(full_disk):
    ledger = Ledger(FileLedgerStore(full_disk / "acme"))
    first = record(ledger)
    ledger.mark(1, "deployed")
    before = {p: p.read_bytes() for p in files_under(full_disk)}

    with pytest.raises(LedgerWriteError, match="No space left on device"):
        record(ledger, description="upgrade", manifests={"compose.yaml": "x" * 200_000})
    assert {p: p.read_bytes() for p in files_under(full_disk)} == before
    assert [(r.number, r.status) for r in ledger.revisions()] == [(1, "deployed")]
    assert ledger.revision(1).manifests == first.manifests

    # With the disk full to the last block, marking a revision fails the same way.
    second = record(ledger, description="upgrade")
    filler = full_disk / "filler"
    with filler.open("wb", buffering=0) as f, pytest.raises(OSError):
        while True:
            f.write(b"\0" * 4096)
    with pytest.raises(LedgerWriteError, match="No space left on device"):
        ledger.mark(second.number, "deployed")
    assert ledger.pending() == second
    assert ledger.last_deployed().number == 1
    filler.unlink()
    assert ledger.mark(second.number, "deployed").status == "deployed"


# --- the ledger -------------------------------------------------------------------------


def test_revisions_are_numbered_and_keep_what_was_applied(tmp_path):
    ledger = Ledger(FileLedgerStore(tmp_path))
    first = record(ledger)
    ledger.mark(1, "deployed")
    second = record(ledger, origin="commander", description="image update event-api",
                    bundle_version="1.1.0", images={"event-api": "sha256:e2"})
    assert (first.number, second.number) == (1, 2)
    assert (second.status, second.origin, second.bundle_version) == ("pending", "commander",
                                                                      "1.1.0")
    assert second.manifests == {"compose.yaml": "services: {}\n"}
    assert second.images == {"event-api": "sha256:e2"}
    assert second.created_at.endswith("+00:00")
    # Another process (here: a fresh Ledger) reads the same from disk.
    again = Ledger(FileLedgerStore(tmp_path))
    assert again.revisions() == [ledger.revision(1), second]
    document = json.loads((tmp_path / "revision-000002.json").read_text())
    assert document["format"] == 1 and document["status"] == "pending"


def test_secrets_are_kept_only_as_hashes(tmp_path):
    digest = "sha256:" + hashlib.sha256(SECRET.encode()).hexdigest()
    ledger = Ledger(FileLedgerStore(tmp_path))
    revision = record(ledger, config={"stores": {"postgres": {
        "dsn": f"postgresql://admin:{SECRET}@db/acme", "hosts": [SECRET, "x"]}}})
    assert revision.secrets == {"postgres-admin": digest}
    assert revision.config["stores"]["postgres"] == {
        "dsn": f"postgresql://admin:{digest}@db/acme", "hosts": [digest, "x"]}
    for path in files_under(tmp_path):
        assert SECRET.encode() not in path.read_bytes(), path


def test_manifests_holding_a_secret_value_are_refused(tmp_path):
    ledger = Ledger(FileLedgerStore(tmp_path))
    with pytest.raises(LedgerError, match=r"compose\.yaml holds the value of secret "
                                          "postgres-admin"):
        record(ledger, manifests={"compose.yaml": f"environment: {{PASSWORD: {SECRET}}}\n"})
    assert ledger.revisions() == []


def test_deploying_a_revision_supersedes_the_one_deployed_before(tmp_path):
    ledger = Ledger(FileLedgerStore(tmp_path))
    assert ledger.last_deployed() is None
    record(ledger)
    ledger.mark(1, "deployed")
    record(ledger, description="upgrade")
    assert ledger.last_deployed().number == 1
    ledger.mark(2, "deployed")
    assert [(r.number, r.status) for r in ledger.revisions()] == [(1, "superseded"),
                                                                 (2, "deployed")]
    assert ledger.last_deployed().number == 2


def test_a_failed_upgrade_rolled_back_leaves_the_last_good_revision_deployed(tmp_path):
    ledger = Ledger(FileLedgerStore(tmp_path))
    record(ledger)
    ledger.mark(1, "deployed")
    record(ledger, description="upgrade")
    ledger.mark(2, "failed", reason="event-api not healthy within 120s")
    rolled = ledger.mark(2, "rolled-back")
    assert (rolled.status, rolled.reason) == ("rolled-back", "event-api not healthy within 120s")
    assert ledger.last_deployed().number == 1 and ledger.pending() is None


@pytest.mark.parametrize(("before", "after"), [
    ([], "superseded"), ([], "pending"), (["deployed"], "deployed"), (["deployed"], "failed"),
    (["rolled-back"], "deployed"), (["failed"], "deployed")])
def test_a_revision_only_moves_to_a_state_that_follows_its_own(tmp_path, before, after):
    ledger = Ledger(FileLedgerStore(tmp_path))
    record(ledger)
    for status in before:
        ledger.mark(1, status)
    with pytest.raises(LedgerError, match=r"revision 1 is .*; it cannot become"):
        ledger.mark(1, after)


def test_no_new_revision_while_an_interrupted_one_is_pending(tmp_path):
    ledger = Ledger(FileLedgerStore(tmp_path))
    record(ledger)
    with pytest.raises(RevisionPending, match=r"revision 1 \(install\) was interrupted"):
        record(ledger, description="upgrade")
    assert ledger.numbers() == [1]


def _record_then_hang(root, recorded):
    ledger = Ledger(FileLedgerStore(root))
    with ledger.lock("upgrade", ttl=60):
        record(ledger, description="upgrade")
        recorded.set()
        time.sleep(60)


def test_an_apply_killed_after_recording_leaves_a_pending_revision_and_no_stuck_lock(tmp_path):
    ledger = Ledger(FileLedgerStore(tmp_path))
    record(ledger)
    ledger.mark(1, "deployed")
    recorded = fork.Event()
    installer = fork.Process(target=_record_then_hang, args=(tmp_path, recorded))
    installer.start()
    assert recorded.wait(10)
    with pytest.raises(LockHeld):
        ledger.lock("rollback").__enter__()
    installer.kill()
    installer.join()

    after = Ledger(FileLedgerStore(tmp_path))
    assert (after.pending().number, after.pending().description) == (2, "upgrade")
    assert after.last_deployed().number == 1
    with after.lock("rollback") as lock:  # taken over at once: its holder is gone
        lock.check()
        after.mark(2, "rolled-back", reason="interrupted")
    assert after.pending() is None


def test_an_unknown_or_corrupt_revision_is_a_clear_error(tmp_path):
    ledger = Ledger(FileLedgerStore(tmp_path))
    with pytest.raises(UnknownRevision, match=r"no revision 3 in the ledger \(it has none\)"):
        ledger.revision(3)
    record(ledger)
    with pytest.raises(UnknownRevision, match=r"revisions are 1 to 1"):
        ledger.revision(3)
    (tmp_path / "revision-000001.json").write_text('{"format": 1, "status": "pend')
    with pytest.raises(LedgerCorrupt, match=f"{tmp_path}/revision-000001.json is not a valid"):
        ledger.revisions()


def test_an_unknown_origin_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown origin 'cron'"):
        record(Ledger(FileLedgerStore(tmp_path)), origin="cron")


# --- the lock ---------------------------------------------------------------------------


def _acquire_at_once(root, start, done, results):
    store = FileLedgerStore(root)
    start.wait()
    try:
        store.acquire(Holder.this_process("race"), ttl=60)
        results.put("won")
    except LockHeld:
        results.put("lost")
    done.wait()  # a winner that exited would be gone, and its lock rightly taken over


def test_of_processes_racing_for_the_lock_exactly_one_wins(tmp_path):
    racers = 8
    for round_ in range(10):
        root = tmp_path / f"round-{round_}"
        start, done, results = fork.Barrier(racers), fork.Barrier(racers), fork.Queue()
        processes = [fork.Process(target=_acquire_at_once, args=(root, start, done, results))
                     for _ in range(racers)]
        for process in processes:
            process.start()
        outcomes = sorted(results.get(timeout=20) for _ in processes)
        for process in processes:
            process.join()
        assert outcomes == ["lost"] * (racers - 1) + ["won"], f"round {round_}"


def _take_turns(root, turns, results):
    store = FileLedgerStore(root)
    inside = root / "inside"
    won = overlaps = 0
    for _ in range(turns):
        try:
            lease = store.acquire(Holder.this_process("turns"), ttl=30)
        except LockHeld:
            time.sleep(0.001)
            continue
        won += 1
        try:
            os.close(os.open(inside, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            overlaps += 1  # another holder is inside at the same time
        time.sleep(0.002)
        inside.unlink(missing_ok=True)
        store.release(lease)
    results.put((won, overlaps))


def test_the_lock_lets_one_holder_in_at_a_time(tmp_path):
    results = fork.Queue()
    processes = [fork.Process(target=_take_turns, args=(tmp_path, 40, results))
                 for _ in range(4)]
    for process in processes:
        process.start()
    counts = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join()
    assert sum(overlaps for _, overlaps in counts) == 0
    assert sum(won for won, _ in counts) >= 10  # the lock changed hands many times


def _hold(root, command, ttl, held):
    FileLedgerStore(root).acquire(Holder.this_process(command), ttl=ttl)
    held.set()
    time.sleep(60)


def test_the_lease_of_a_sigkilled_holder_is_taken_over_at_once(tmp_path):
    store = FileLedgerStore(tmp_path)
    held = fork.Event()
    holder = fork.Process(target=_hold, args=(tmp_path, "upgrade", 3600, held))
    holder.start()
    assert held.wait(10)
    with pytest.raises(LockHeld, match=rf"`upgrade` \(pid {holder.pid} on "
                                       rf"{socket.gethostname()}, since .*\)"):
        store.acquire(Holder.this_process("install"), ttl=60)
    holder.kill()
    # Not reaped yet: a zombie is as gone as a reaped process.
    deadline = time.monotonic() + 10
    while Path(f"/proc/{holder.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    lease = store.acquire(Holder.this_process("install"), ttl=60)
    assert (lease.holder.pid, lease.holder.command) == (os.getpid(), "install")
    holder.join()


def _keep_lock_while_stopped(root, ttl, held, resumed, results):
    with LeaseKeeper(FileLedgerStore(root), "upgrade", ttl=ttl) as lock:
        held.set()
        resumed.wait(30)
        time.sleep(ttl)  # the keeper's next renewal finds the lease taken over
        try:
            lock.check()
            results.put("still held")
        except LeaseLost as exc:
            results.put(str(exc))


def test_a_stopped_holder_loses_the_lock_once_its_lease_runs_out(tmp_path):
    store = FileLedgerStore(tmp_path)
    held, resumed, results = fork.Event(), fork.Event(), fork.Queue()
    holder = fork.Process(target=_keep_lock_while_stopped,
                          args=(tmp_path, 1.0, held, resumed, results))
    holder.start()
    assert held.wait(10)
    time.sleep(1.8)  # past the ttl: the keeper renews the lease
    with pytest.raises(LockHeld):
        store.acquire(Holder.this_process("install"), ttl=60)

    os.kill(holder.pid, signal.SIGSTOP)
    with pytest.raises(LockHeld):  # alive, and its lease has not run out yet
        store.acquire(Holder.this_process("install"), ttl=60)
    expires_at = json.loads((tmp_path / "lease.json").read_text())["expires_at"]
    time.sleep(expires_at - time.time() + 0.05)  # it runs out while the holder cannot renew
    ours = store.acquire(Holder.this_process("install"), ttl=60)
    os.kill(holder.pid, signal.SIGCONT)
    resumed.set()
    message = results.get(timeout=10)
    holder.join(10)
    assert message.startswith("lost the lock of this platform")
    assert f"taken over by `install` (pid {os.getpid()}" in message
    # Its keeper's release on the way out did not remove our lease.
    assert json.loads((tmp_path / "lease.json").read_text())["token"] == ours.token


def test_release_removes_only_our_own_lease_and_renew_notices_a_takeover(tmp_path):
    store = FileLedgerStore(tmp_path)
    first = store.acquire(Holder.this_process("install"), ttl=60)
    assert store.renew(first, ttl=120).expires_at > first.expires_at
    store.release(first)
    assert not (tmp_path / "lease.json").exists()

    stale = store.acquire(Holder.this_process("install"), ttl=0.05)
    time.sleep(0.1)
    current = store.acquire(Holder.this_process("upgrade"), ttl=60)  # ours ran out
    store.release(stale)
    assert store._read_lease() == current
    with pytest.raises(LeaseLost, match="taken over by `upgrade`"):
        store.renew(stale, ttl=60)


def test_a_lease_of_another_host_is_waited_for_until_it_runs_out(tmp_path):
    store = FileLedgerStore(tmp_path)
    elsewhere = Holder("other-host", 4242, "upgrade", time.time(), "boot/pid:[1]/4242/99")
    store.acquire(elsewhere, ttl=0.5)
    with pytest.raises(LockHeld, match=r"`upgrade` \(pid 4242 on other-host.* runs out in"):
        store.acquire(Holder.this_process("install"), ttl=60)
    time.sleep(0.6)
    assert store.acquire(Holder.this_process("install"), ttl=60).holder.pid == os.getpid()


def test_a_holder_is_gone_only_when_that_very_process_no_longer_exists():
    me = Holder.this_process("install")
    assert me.process is not None and not me.is_gone()
    reused_pid = Holder(me.host, me.pid, "install", me.started_at,
                        me.process.rsplit("/", 1)[0] + "/1")  # same pid, other start time
    assert reused_pid.is_gone()
    unprovable = Holder(me.host, me.pid + 10_000_000, "install", me.started_at, None)
    assert not unprovable.is_gone()
    other_namespace = Holder(me.host, 999_999_999, "install", me.started_at,
                             "boot/pid:[1]/999999999/5")
    assert not other_namespace.is_gone()


def test_a_keeper_releases_the_lock_on_leaving_and_keeps_it_renewed_inside(tmp_path):
    store = FileLedgerStore(tmp_path)
    with LeaseKeeper(store, "install", ttl=1.0) as lock:
        first = lock.lease.expires_at
        time.sleep(1.2)
        lock.check()
        assert lock.lease.expires_at > first
        with pytest.raises(LockHeld):
            store.acquire(Holder.this_process("upgrade"), ttl=60)
    assert not (tmp_path / "lease.json").exists()


def test_a_hand_edited_lease_is_reported_not_ignored(tmp_path):
    store = FileLedgerStore(tmp_path)
    store.acquire(Holder.this_process("install"), ttl=60)
    (tmp_path / "lease.json").write_text("{not json")
    with pytest.raises(LedgerCorrupt, match=r"lease\.json is not a valid heliostat ledger file"):
        store.acquire(Holder.this_process("upgrade"), ttl=60)
