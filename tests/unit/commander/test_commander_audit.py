"""The audit log and the operation store on real files: appended, fsynced, read back by a
later process, a torn last line skipped."""

from __future__ import annotations

import os

from commander.audit import AuditLog
from commander.operations import OperationQueue, OperationStore


def test_audit_entries_survive_a_restart_and_a_torn_line(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append(who="token:commander-token", remote="10.0.0.1", action="image",
               target="commander: image gateway:2", outcome="accepted", operation="op-1")
    log.append(who="registry", action="registry notification", outcome="ignored",
               detail="a pull, not a push")
    with open(path, "ab") as f:
        f.write(b'{"who": "torn')  # a crash in the middle of a write
    again = AuditLog(path)
    entries = again.entries()
    assert [(e["who"], e["outcome"]) for e in entries] == [
        ("token:commander-token", "accepted"), ("registry", "ignored")]
    assert entries[0]["remote"] == "10.0.0.1" and entries[0]["at"].endswith("+00:00")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert again.entries(limit=1)[0]["detail"] == "a pull, not a push"


def test_operations_persist_with_their_events(tmp_path):
    store = OperationStore(tmp_path)
    first = store.create("image", "commander: image gateway:2", "me", None,
                         services=("gateway",), image="2")
    store.add_event(first.id, "revision 2 deployed")
    store.update(first.id, state="deployed", revision=2)
    reloaded = OperationStore(tmp_path)
    operation = reloaded.get(first.id)
    assert (operation.state, operation.revision, operation.services) == (
        "deployed", 2, ("gateway",))
    assert reloaded.events(first.id) == ["revision 2 deployed"]
    assert reloaded.create("rollback", "r", "me", None, revision=1).id == "op-2"


def test_only_registry_pushes_collapse(tmp_path):
    store = OperationStore(tmp_path)
    queue = OperationQueue(store)
    asked = [store.create("image", f"image {n}", "me", None, services=("gateway",), image=n)
             for n in ("1", "2")]
    for operation in asked:
        assert queue.put(operation) == []
    pushed = [store.create("registry", f"push {n}", "registry", None, services=("gateway",),
                           image=n) for n in ("3", "4")]
    assert queue.put(pushed[0]) == []
    [superseded] = queue.put(pushed[1])
    assert superseded.id == pushed[0].id
    assert [op.id for op in queue.pending()] == [asked[0].id, asked[1].id, pushed[1].id]
    assert queue.take(0).id == asked[0].id
