"""The worker over a real ledger, with the Applier replaced by a stand-in (the real one
needs an engine: tests/e2e/heliostat/test_commander.py runs it): what change it asks
for, how it waits for the lock, and how an operation ends — also after a restart."""

from __future__ import annotations

from typing import Any

import pytest

from commander import worker as worker_module
from heliostat.apply import Change, Failure, Outcome
from heliostat.ledger_lock import Holder, Lease, LockHeld
from heliostat.plan import Plan
from heliostat.target import Target

MAPPED = "auto_update: true\nrepositories: [{repository: gateway, services: [gateway]}]\n"
NO_STEPS = Plan((), ())


class StandInApplier:
    """Answers `run` from a script: LockHeld a few times, then an Outcome (or a raise)."""

    script: list[Any] = []
    changes: list[Change] = []

    def __init__(self, driver: Any, progress: Any, rollback: bool = True) -> None:
        self.progress = progress
        assert rollback

    def run(self, change: Change, command: str) -> Outcome:
        StandInApplier.changes.append(change)
        step = StandInApplier.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step(change)
        self.progress(f"revision {step.revision} ({change.description}): 1 to update")
        return step


@pytest.fixture(autouse=True)
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    StandInApplier.script, StandInApplier.changes = [], []
    monkeypatch.setattr(worker_module, "Applier", StandInApplier)
    monkeypatch.setattr(Target, "image_ids", lambda self: {})
    monkeypatch.setattr(Target, "driver", None)


def held() -> LockHeld:
    return LockHeld(Lease.grant(Holder.this_process("upgrade"), 30), "/state/lease")


def image_update(commander: Any, image: str = "2.0") -> Any:
    return commander.queue_new("image", f"commander: image gateway:{image}", "me", "10.0.0.1",
                               services=("gateway",), image=image)


def test_an_image_update_waits_for_the_lock_and_applies_the_pinned_config(
        commander, install, settings):
    install(MAPPED)
    commander.worker.lock_retry_seconds = 0.01
    operation = image_update(commander)

    def still_waiting(change: Change) -> Outcome:
        assert commander.store.get(operation.id).state == "waiting"
        return Outcome("deployed", 2, NO_STEPS, 1.0)

    StandInApplier.script = [held(), held(), still_waiting]
    finished = commander.worker.run(commander.queue.take(0))
    assert (finished.state, finished.revision) == ("deployed", 2)
    change = StandInApplier.changes[-1]
    assert (change.origin, change.description) == ("commander", "commander: image gateway:2.0")
    assert change.config["images"]["services"] == {"gateway": "2.0"}
    assert "image: heliostat/gateway:2.0\n" in change.manifests["compose.yaml"]
    events = commander.store.events(operation.id)
    assert events[0].startswith("waiting: `upgrade` (pid ")
    assert events[-1] == "finished: deployed"
    audited = commander.audit.entries()[-1]
    assert (audited["operation"], audited["outcome"], audited["remote"]) == (
        operation.id, "deployed", "10.0.0.1")


def test_a_failed_gate_ends_rolled_back_with_the_reason(commander, install):
    install(MAPPED)
    failure = Failure("gateway-1", "gateway", "health check failed", ("nginx: bad", "exit 1"))
    StandInApplier.script = [Outcome("rolled-back", 2, NO_STEPS, 1.0, failure, 1)]
    image_update(commander, "broken")
    finished = commander.worker.run(commander.queue.take(0))
    assert (finished.state, finished.revision, finished.rolled_back_to) == ("rolled-back", 2, 1)
    assert finished.reason.startswith("service gateway (gateway-1): health check failed")
    assert "  | nginx: bad" in finished.reason
    assert "health check failed" in commander.audit.entries()[-1]["detail"]


def test_after_a_restart_the_revision_resumed_is_the_operations(commander, install, ledger):
    """Killed mid-rollout: the revision it left pending is resumed by Applier.run, which
    then has nothing left to do; the operation ends as that revision did."""
    install(MAPPED)

    def resumed(change: Change) -> Outcome:
        pending = ledger.record_revision(
            origin="commander", description=change.description, bundle_version="0",
            bundle_digest="", config=change.config, secrets={}, manifests=change.manifests,
            images={})
        done = ledger.mark(pending.number, "deployed")
        return Outcome("unchanged", done.number, NO_STEPS, 1.0, resumed=done)

    StandInApplier.script = [resumed]
    image_update(commander)
    finished = commander.worker.run(commander.queue.take(0))
    assert (finished.state, finished.revision) == ("deployed", 2)


def test_after_a_restart_a_revision_already_deployed_is_the_operations(commander, install,
                                                                       ledger):
    install(MAPPED)
    operation = image_update(commander)

    def done_before(change: Change) -> Outcome:
        # The killed Commander had deployed it, but not recorded the operation's end.
        recorded = ledger.record_revision(
            origin="commander", description=operation.description, bundle_version="0",
            bundle_digest="", config=change.config, secrets={}, manifests=change.manifests,
            images={})
        ledger.mark(recorded.number, "deployed")
        return Outcome("unchanged", recorded.number, NO_STEPS, 0.1)

    StandInApplier.script = [done_before]
    assert commander.worker.run(commander.queue.take(0)).state == "deployed"
    # Nothing Commander did: unchanged it stays.
    StandInApplier.script = [Outcome("unchanged", 1, NO_STEPS, 0.1)]
    image_update(commander, "3.0")
    assert commander.worker.run(commander.queue.take(0)).state == "unchanged"


def test_a_rollback_applies_the_revisions_manifests(commander, install, ledger):
    install(MAPPED)
    install(MAPPED.replace("auto_update: true", "auto_update: false"), "upgrade")
    StandInApplier.script = [Outcome("deployed", 3, NO_STEPS, 1.0)]
    commander.queue_new("rollback", "commander: rollback to 1", "me", None, revision=1)
    assert commander.worker.run(commander.queue.take(0)).state == "deployed"
    change = StandInApplier.changes[-1]
    assert change.manifests == ledger.revision(1).manifests
    assert change.config == ledger.revision(1).config
    assert change.origin == "commander"


def test_an_unexpected_error_fails_the_operation_and_the_worker_goes_on(commander, install):
    install(MAPPED)
    StandInApplier.script = [RuntimeError("engine went away"),
                             Outcome("deployed", 2, NO_STEPS, 1.0)]
    first, second = image_update(commander), image_update(commander, "3.0")
    commander.worker.start()
    try:
        for operation in (first, second):
            for _ in range(200):
                if commander.store.get(operation.id).finished:
                    break
                commander.worker._stop.wait(0.02)
    finally:
        commander.worker.stop()
    assert commander.store.get(first.id).state == "failed"
    assert commander.store.get(first.id).reason == "RuntimeError: engine went away"
    assert commander.store.get(second.id).state == "deployed"


def test_a_pin_that_breaks_the_config_fails_before_any_apply(commander, install, ledger):
    install(MAPPED)
    commander.queue_new("image", "commander: image gateway:x y", "me", None,
                        services=("gateway",), image="x y")
    finished = commander.worker.run(commander.queue.take(0))
    assert finished.state == "failed"
    assert "is not a tag, a digest" in finished.reason
    assert StandInApplier.changes == []


def test_an_image_update_is_refused_when_commander_renders_the_deployed_config_otherwise(
        commander, install, ledger):
    """A Commander of another heliostat version than the deploying installer: its render
    of the deployed config differs, so a pin would change more than the image."""
    number = install(MAPPED)
    deployed = ledger.revision(number)
    manifests = dict(deployed.manifests)
    changed = sorted(manifests)[0]
    manifests[changed] += "\n# rendered by another version\n"
    ledger.record_revision(origin="cli", description="upgrade", bundle_version="0.0.9",
                           bundle_digest="", config=deployed.config, secrets={},
                           manifests=manifests, images={})
    ledger.mark(number + 1, "deployed")
    image_update(commander)
    finished = commander.worker.run(commander.queue.take(0))
    assert finished.state == "failed"
    assert "another heliostat version" in finished.reason and changed in finished.reason
    assert StandInApplier.changes == []
