"""The apply loop above any driver: waves, health gates, rollback, resuming, the lock —
driven through an in-memory driver, so each rule is checked without a target."""

import json
import threading
import time

import pytest

from heliostat.apply import Applier, Change
from heliostat.data_backup import backups_since
from heliostat.driver import CommandResult, DataBackup, DesiredObject, Health, LiveObject
from heliostat.ledger import Ledger
from heliostat.ledger_lock import LockHeld
from heliostat.ledger_store import FileLedgerStore


def manifests(**services) -> dict[str, str]:
    """`name={"image": ..., "depends_on": [...], "replicas": n}` as one manifest file."""
    return {"objects.json": json.dumps(services, sort_keys=True)}


class MemoryDriver:
    """Objects in a dict; `unhealthy` names images whose health gate fails. A service with
    `"backup": true` keeps bytes in `data[key]`, which its dump writes and restore reads."""

    immutable_fields = frozenset({"volume"})

    def __init__(self, root):
        self.store = FileLedgerStore(root)
        self.live: dict[str, LiveObject] = {}
        self.unhealthy: set[str] = set()
        self.calls: list[tuple[str, str]] = []
        self.active = 0
        self.most_active = 0
        self.lock = threading.Lock()
        self.on_apply = None  # called with each step, e.g. to interrupt
        self.on_wait = None  # called with each step before its gate answers
        self.data: dict[str, bytes] = {}
        self.dump_fails = False

    def desired_objects(self, files):
        if not files:
            return []
        services = json.loads(files["objects.json"])
        backup = DataBackup(("dump",), ("restore",))
        objects = [DesiredObject(f"{name}-{index}", name, {"image": spec["image"]},
                                 tuple(spec.get("depends_on", ())), health_timeout=5,
                                 backup=backup if spec.get("backup") and index == 0 else None)
                   for name, spec in services.items()
                   for index in range(spec.get("replicas", 1))]
        # `"sidecar": true`: one more object inside the first, changing with it.
        return objects + [DesiredObject(f"{name}-0-side", name, {"image": spec["image"],
                                                                  "side": True},
                                        tuple(spec.get("depends_on", ())), health_timeout=5,
                                        applied_after=(f"{name}-0",))
                          for name, spec in services.items() if spec.get("sidecar")]

    def run_in(self, key, command, stdin=None, stdout=None):
        self.calls.append((command[0], key))
        if command == ("dump",):
            if self.dump_fails:
                stdout.write(b"half a dump")
                return CommandResult(1, ("pg_dump: error: connection refused",))
            stdout.write(self.data.get(key, b""))
        else:
            self.data[key] = stdin.read()
        return CommandResult(0)

    def observe(self):
        return dict(self.live)

    def apply(self, step, revision):
        if self.on_apply:
            self.on_apply(step)
        with self.lock:
            self.calls.append((step.action, step.key))
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        time.sleep(0.01)
        with self.lock:
            self.active -= 1
            if step.action == "delete":
                del self.live[step.key]
            else:
                obj = step.desired
                self.live[obj.key] = LiveObject(obj.key, obj.service, obj.spec_hash, revision,
                                                "healthy", step.wave, obj.spec)

    def wait(self, step, deadline):
        self.calls.append(("wait", step.key))
        if self.on_wait:
            self.on_wait(step)
        if step.desired.spec["image"] in self.unhealthy:
            return Health.failed("never became healthy", ("line 1", "line 2"))
        return Health.ok()

    def ledger_store(self):
        return self.store


@pytest.fixture
def driver(tmp_path):
    return MemoryDriver(tmp_path / "ledger")


PLATFORM = manifests(db={"image": "db:1"}, migrate={"image": "m:1", "depends_on": ["db"]},
                     api={"image": "api:1", "depends_on": ["migrate"], "replicas": 2},
                     web={"image": "web:1", "depends_on": ["db"]})


def run(driver, files, description="install", rollback=True, secrets=None):
    messages = []
    outcome = Applier(driver, messages.append, rollback=rollback).run(
        Change(description, files, config={"name": "p"}, secrets=secrets or {}), description)
    return outcome, messages


def test_install_starts_each_service_once_its_dependencies_passed_their_gates(driver):
    outcome, messages = run(driver, PLATFORM)
    assert outcome.status == "deployed" and outcome.revision == 1
    order = [key for action, key in driver.calls if action == "create"]
    assert order.index("db-0") < order.index("migrate-0") < order.index("api-0")
    assert order.index("db-0") < order.index("web-0")
    assert driver.calls.index(("wait", "db-0")) < driver.calls.index(("create", "web-0"))
    assert driver.calls.index(("wait", "migrate-0")) < driver.calls.index(("create", "api-0"))
    assert Ledger(driver.store).revision(1).status == "deployed"
    assert "wave 1/3: db" in messages and "wave 2/3: web" in messages


def test_a_service_does_not_wait_for_services_of_a_wave_it_does_not_depend_on(driver):
    """api needs migrate, not web (both in wave 2): it starts while web still gates."""
    api_created = threading.Event()

    def hold_web(step):
        if step.key == "web-0":
            assert api_created.wait(5), "api waited for web"
        if step.key == "api-0":
            assert ("wait", "migrate-0") in driver.calls
            api_created.set()

    driver.on_wait = hold_web
    outcome, _ = run(driver, PLATFORM)
    assert outcome.status == "deployed"


def test_an_attached_object_is_applied_after_the_one_it_lives_in(driver):
    """A sidecar lost with its main object (as a Compose sidecar is when its main container
    is replaced) is created after the main one is back, not before."""
    run(driver, manifests(worker={"image": "w:1", "sidecar": True}))
    del driver.live["worker-0-side"]
    driver.calls.clear()
    outcome, _ = run(driver, manifests(worker={"image": "w:2", "sidecar": True}), "upgrade")
    assert outcome.status == "deployed"
    assert driver.calls == [("update", "worker-0"), ("wait", "worker-0"),
                            ("create", "worker-0-side"), ("wait", "worker-0-side")]


def test_services_of_one_wave_run_in_parallel(driver):
    files = manifests(**{f"s{i}": {"image": "x"} for i in range(4)})
    run(driver, files)
    assert driver.most_active > 1


def test_reapplying_records_nothing_and_touches_nothing(driver):
    run(driver, PLATFORM)
    driver.calls.clear()
    outcome, _ = run(driver, PLATFORM, "upgrade")
    assert outcome.status == "unchanged" and outcome.revision == 1
    assert driver.calls == []
    assert Ledger(driver.store).numbers() == [1]


def test_an_upgrade_changes_replicas_one_at_a_time_and_supersedes(driver):
    run(driver, PLATFORM)
    driver.calls.clear()
    upgraded = manifests(**{**json.loads(PLATFORM["objects.json"]),
                            "api": {"image": "api:2", "depends_on": ["migrate"], "replicas": 2}})
    outcome, _ = run(driver, upgraded, "upgrade")
    assert outcome.status == "deployed"
    assert driver.calls == [("update", "api-0"), ("wait", "api-0"),
                            ("update", "api-1"), ("wait", "api-1")]
    statuses = [r.status for r in Ledger(driver.store).revisions()]
    assert statuses == ["superseded", "deployed"]


def test_a_failed_gate_rolls_back_to_the_last_deployed_revision(driver):
    run(driver, PLATFORM)
    driver.unhealthy.add("api:2")
    broken = manifests(**{**json.loads(PLATFORM["objects.json"]),
                          "api": {"image": "api:2", "depends_on": ["migrate"], "replicas": 2}})
    outcome, messages = run(driver, broken, "upgrade")
    assert outcome.status == "rolled-back" and outcome.rolled_back_to == 1
    assert outcome.failure.service == "api" and outcome.failure.logs == ("line 1", "line 2")
    assert driver.live["api-0"].spec == {"image": "api:1"}
    assert driver.live["api-0"].revision == 1  # rolled back objects carry revision 1
    ledger = Ledger(driver.store)
    assert [r.status for r in ledger.revisions()] == ["deployed", "rolled-back"]
    assert "never became healthy" in ledger.revision(2).reason
    assert "line 2" in ledger.revision(2).reason
    assert "rolling back to revision 1" in messages


def test_no_rollback_leaves_the_failed_state(driver):
    run(driver, PLATFORM)
    driver.unhealthy.add("api:2")
    broken = manifests(**{**json.loads(PLATFORM["objects.json"]),
                          "api": {"image": "api:2", "depends_on": ["migrate"]}})
    outcome, _ = run(driver, broken, "upgrade", rollback=False)
    assert outcome.status == "failed"
    assert driver.live["api-0"].spec == {"image": "api:2"}
    assert Ledger(driver.store).revision(2).status == "failed"


def test_a_failed_first_install_rolls_back_to_nothing(driver):
    driver.unhealthy.add("web:1")
    outcome, _ = run(driver, PLATFORM)
    assert outcome.status == "rolled-back" and outcome.rolled_back_to is None
    assert driver.live == {}


def test_a_target_error_is_a_failed_step(driver):
    def refuse(step):
        if step.key == "web-0":
            raise RuntimeError("engine said no")

    driver.on_apply = refuse
    outcome, _ = run(driver, PLATFORM)
    assert outcome.status == "rolled-back"
    assert outcome.failure.key == "web-0" and outcome.failure.reason == "engine said no"


def test_removed_services_are_deleted_after_the_waves(driver):
    run(driver, PLATFORM)
    smaller = manifests(db={"image": "db:1"})
    outcome, _ = run(driver, smaller, "upgrade")
    assert outcome.status == "deployed"
    assert set(driver.live) == {"db-0"}
    deletions = [key for action, key in driver.calls if action == "delete"]
    assert deletions.index("api-0") < deletions.index("migrate-0")  # latest wave first


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, not even the ledger's marking."""


def test_an_interrupted_apply_is_resumed_by_the_next_command(driver):
    def kill(step):
        if step.key == "api-0":
            raise Killed

    driver.on_apply = kill
    with pytest.raises(Killed):
        run(driver, PLATFORM)
    assert Ledger(driver.store).pending().number == 1
    driver.on_apply = None
    driver.calls.clear()
    outcome, messages = run(driver, PLATFORM)
    assert outcome.resumed.number == 1 and outcome.resumed.status == "deployed"
    assert outcome.status == "unchanged"
    # what it had applied already is gated again; what was left is applied
    assert ("wait", "db-0") in driver.calls and ("create", "api-0") in driver.calls
    assert ("create", "db-0") not in driver.calls
    assert "revision 1 (install) was interrupted; resuming it" in messages


def test_a_resumed_apply_that_fails_is_rolled_back(driver):
    run(driver, PLATFORM)
    upgraded = manifests(**{**json.loads(PLATFORM["objects.json"]), "web": {"image": "web:2",
                                                                            "depends_on": ["db"]}})

    def kill(step):
        raise Killed

    driver.on_apply = kill
    with pytest.raises(Killed):
        run(driver, upgraded, "upgrade")
    driver.on_apply = None
    driver.unhealthy.add("web:2")
    outcome, _ = run(driver, upgraded, "upgrade")
    # the resumed revision 2 fails and goes back to 1; being this very change, it is
    # reported, not tried a second time
    assert [r.status for r in Ledger(driver.store).revisions()] == ["deployed", "rolled-back"]
    assert outcome.status == "rolled-back" and outcome.revision == 2
    assert outcome.resumed.number == 2 and outcome.failure.service == "web"
    assert driver.live["web-0"].spec == {"image": "web:1"}


def test_a_second_apply_is_refused_while_one_holds_the_lock(driver):
    ledger = Ledger(driver.store)
    with ledger.lock("upgrade"), pytest.raises(LockHeld, match=r"`upgrade` \(pid"):
        run(driver, PLATFORM)


def test_secret_values_reach_the_ledger_only_as_hashes(driver):
    run(driver, PLATFORM, secrets={"db-password": "hunter2-very-secret"})
    text = (driver.store.root / "revision-000001.json").read_text()
    assert "hunter2-very-secret" not in text
    assert Ledger(driver.store).revision(1).secrets["db-password"].startswith("sha256:")


BACKED_UP = manifests(db={"image": "db:1", "backup": True},
                      api={"image": "api:1", "depends_on": ["db"]})


def with_image(files, service, image):
    services = json.loads(files["objects.json"])
    services[service]["image"] = image
    return manifests(**services)


def test_an_upgrade_dumps_a_backed_up_service_before_changing_it(driver):
    run(driver, BACKED_UP)
    driver.data["db-0"] = b"rows of revision 1"
    driver.calls.clear()
    outcome, messages = run(driver, with_image(BACKED_UP, "db", "db:2"), "upgrade")
    assert outcome.status == "deployed"
    assert driver.calls[:2] == [("dump", "db-0"), ("update", "db-0")]
    backup = Ledger(driver.store).revision(2).backups["db"]
    assert backup["bytes"] == len(b"rows of revision 1") and backup["revision"] == 2
    with driver.store.open_blob(backup["blob"]) as blob:
        assert blob.read() == b"rows of revision 1"
    assert any("db backed up" in m for m in messages)


def test_changing_another_service_takes_no_dump(driver):
    run(driver, BACKED_UP)
    driver.calls.clear()
    run(driver, with_image(BACKED_UP, "api", "api:2"), "upgrade")
    assert ("dump", "db-0") not in driver.calls
    assert Ledger(driver.store).revision(2).backups == {}


def test_a_failed_dump_changes_nothing_and_keeps_no_partial_dump(driver):
    run(driver, BACKED_UP)
    driver.dump_fails = True
    driver.calls.clear()
    outcome, _ = run(driver, with_image(BACKED_UP, "db", "db:2"), "upgrade")
    assert outcome.status == "rolled-back"
    assert "backing up db before changing it failed (exit 1); nothing was changed" \
        in outcome.failure.reason
    assert "connection refused" in outcome.failure.reason
    assert [c for c in driver.calls if c[0] in ("update", "replace")] == []
    assert driver.live["db-0"].spec == {"image": "db:1"}
    assert not [n for n in driver.store.names() if n.startswith("backup-")]


def test_restoring_loads_the_dump_once_its_service_is_healthy_before_dependants(driver):
    run(driver, BACKED_UP)
    driver.data["db-0"] = b"old rows"
    run(driver, with_image(BACKED_UP, "db", "db:2"), "upgrade")
    driver.data["db-0"] = b"new rows"
    found = backups_since(Ledger(driver.store), 1)
    assert set(found) == {"db"} and found["db"]["revision"] == 2
    driver.calls.clear()
    outcome = Applier(driver).run(Change("rollback to 1", BACKED_UP, restore=found), "rollback")
    assert outcome.status == "deployed"
    assert driver.data["db-0"] == b"old rows"
    calls = driver.calls
    assert calls.index(("wait", "db-0")) < calls.index(("restore", "db-0"))
    # the rollback changed db, so the data it replaced was dumped first
    assert calls.index(("dump", "db-0")) < calls.index(("update", "db-0"))
    assert Ledger(driver.store).revision(3).restore["db"]["blob"] == found["db"]["blob"]


def test_a_restore_runs_even_when_no_object_changes(driver):
    run(driver, BACKED_UP)
    driver.data["db-0"] = b"old rows"
    run(driver, with_image(BACKED_UP, "db", "db:2"), "upgrade")
    driver.data["db-0"] = b"new rows"
    same = with_image(BACKED_UP, "db", "db:2")
    outcome = Applier(driver).run(Change("restore", same, restore=backups_since(
        Ledger(driver.store), 1)), "rollback")
    assert outcome.status == "deployed" and driver.data["db-0"] == b"old rows"


def test_a_dump_that_changed_on_disk_is_not_restored(driver):
    run(driver, BACKED_UP)
    driver.data["db-0"] = b"old rows"
    run(driver, with_image(BACKED_UP, "db", "db:2"), "upgrade")
    found = backups_since(Ledger(driver.store), 1)
    (driver.store.root / found["db"]["blob"]).write_bytes(b"tampered")
    driver.data["db-0"] = b"new rows"
    outcome = Applier(driver).run(Change("rollback to 1", BACKED_UP, restore=found), "rollback")
    assert outcome.status == "rolled-back" and "sha256 differs" in outcome.failure.reason
    assert driver.data["db-0"] == b"new rows"


def test_a_revision_killed_after_its_dump_resumes_without_dumping_again(driver):
    run(driver, BACKED_UP)
    driver.data["db-0"] = b"rows of revision 1"

    def kill(step):
        if step.key == "db-0":
            raise Killed

    driver.on_apply = kill
    with pytest.raises(Killed):
        run(driver, with_image(BACKED_UP, "db", "db:2"), "upgrade")
    assert Ledger(driver.store).pending().backups["db"]["revision"] == 2
    driver.on_apply = None
    driver.data["db-0"] = b"changed meanwhile"
    driver.calls.clear()
    outcome, _ = run(driver, with_image(BACKED_UP, "db", "db:2"), "upgrade")
    assert outcome.resumed.status == "deployed"
    assert ("dump", "db-0") not in driver.calls
    with driver.store.open_blob(Ledger(driver.store).revision(2).backups["db"]["blob"]) as blob:
        assert blob.read() == b"rows of revision 1"
