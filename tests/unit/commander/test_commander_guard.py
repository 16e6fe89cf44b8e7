"""GuardedDriver: a Commander change, checked under the lock before any step — built on
the revision deployed now, and not replacing Commander — with a stand-in driver over a
real ledger."""

from __future__ import annotations

from typing import Any

import pytest
from commander_testing import AUTH

from commander.guard import GuardedDriver, Stale
from commander.platform_state import Refused
from heliostat.apply import Change
from heliostat.driver import DesiredObject, LiveObject

MANIFESTS = {"compose.yaml": "new"}


class StandInDriver:
    immutable_fields: frozenset[str] = frozenset()

    def __init__(self, live: dict[str, LiveObject]) -> None:
        self.live = live

    def desired_objects(self, manifests: dict[str, str]) -> list[DesiredObject]:
        image = manifests.get("compose.yaml", "")
        return [DesiredObject("gateway-1", "gateway", {"image": image}),
                DesiredObject("commander-1", "commander", {"image": "same"})]

    def observe(self) -> dict[str, LiveObject]:
        return self.live

    def ledger_store(self) -> Any:
        return "the store"


def live(commander_image: str = "same") -> dict[str, LiveObject]:
    objects = StandInDriver({}).desired_objects({"compose.yaml": "old"})
    objects[1] = DesiredObject("commander-1", "commander", {"image": commander_image})
    return {o.key: LiveObject(o.key, o.service, o.spec_hash, 1) for o in objects}


def record(ledger: Any, manifests: dict[str, str], status: str = "deployed") -> int:
    revision = ledger.record_revision(origin="cli", description="x", bundle_version="0",
                                      bundle_digest="", config={}, secrets={},
                                      manifests=manifests, images={})
    if status != "pending":
        ledger.mark(revision.number, status)
    return revision.number


def test_a_change_built_on_the_deployed_revision_passes(ledger):
    built_on = record(ledger, {"compose.yaml": "old"})
    guarded = GuardedDriver(StandInDriver(live()), ledger, Change("c", MANIFESTS), built_on)
    assert guarded.ledger_store() == "the store"  # everything else is the driver's
    assert [o.key for o in guarded.desired_objects(MANIFESTS)] == ["gateway-1", "commander-1"]
    assert guarded.checked


def test_a_change_built_before_another_command_deployed_is_stale(ledger):
    built_on = record(ledger, {"compose.yaml": "old"})
    record(ledger, {"compose.yaml": "cli upgrade"})
    guarded = GuardedDriver(StandInDriver(live()), ledger, Change("c", MANIFESTS), built_on)
    with pytest.raises(Stale, match="revision 2 was deployed since the change was built on "
                                    "revision 1"):
        guarded.desired_objects(MANIFESTS)


def test_resuming_or_rolling_back_is_not_checked(ledger):
    built_on = record(ledger, {"compose.yaml": "old"})
    record(ledger, MANIFESTS, status="pending")  # interrupted: Applier.run resumes it first
    guarded = GuardedDriver(StandInDriver(live("other")), ledger, Change("c", MANIFESTS),
                            built_on)
    guarded.desired_objects(MANIFESTS)
    guarded.desired_objects({"compose.yaml": "old"})
    assert not guarded.checked


def test_a_change_that_replaces_commander_is_refused(ledger):
    built_on = record(ledger, {"compose.yaml": "old"})
    guarded = GuardedDriver(StandInDriver(live("older commander")), ledger,
                            Change("c", MANIFESTS), built_on)
    with pytest.raises(Refused, match=r"would replace Commander itself \(commander-1\)"):
        guarded.desired_objects(MANIFESTS)


def test_an_image_update_never_names_commander(client, install):
    install()
    answer = client.post("/api/v1/services/commander/image", headers=AUTH,
                         json={"image": "2.0"})
    assert answer.status_code == 409
    assert "Commander does not replace itself" in answer.get_json()["error"]
