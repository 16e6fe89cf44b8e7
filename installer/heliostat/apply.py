"""Apply a change to a platform: the one path every install, upgrade, rollback and
uninstall takes, whatever the target (docs/drivers.md, "What the core does above it").

Under the ledger's lock: finish a revision an interrupted command left `pending`, plan,
record the new revision `pending`, apply each service behind health gates once the
services it depends on passed theirs, then mark it `deployed` — or, when a gate fails,
roll back to the last deployed revision and mark it `rolled-back` (`failed` with rollback
turned off). Like Helm's pkg/action over a driver, with each step logged and
health-checked the way Kamal does it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from heliostat import __version__, data_backup
from heliostat.driver import Driver, Health, PlanStep
from heliostat.ledger import Ledger, Origin, Revision
from heliostat.ledger_lock import LeaseKeeper, LedgerError
from heliostat.plan import Plan, plan

Progress = Callable[[str], None]
T = TypeVar("T")
LOG_LINES_KEPT = 10  # of a failed object, in the ledger's reason


@dataclass(frozen=True)
class Change:
    """What to make the platform look like, and how to describe it in the ledger."""

    description: str  # `install`, `upgrade`, `rollback to 3`, `uninstall`
    manifests: dict[str, str]  # as `render` writes them
    config: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # name -> value: hashed, never kept
    images: dict[str, str] = field(default_factory=dict)
    origin: Origin = "cli"
    bundle_version: str = __version__
    bundle_digest: str = ""
    # service -> a backup recorded in the ledger, loaded back once the service is healthy
    restore: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """The object whose step or health gate failed: what went wrong and its last log lines."""

    key: str
    service: str
    reason: str
    logs: tuple[str, ...] = ()

    def summary(self) -> str:
        return f"service {self.service} ({self.key}): {self.reason}"

    def text(self, lines: int = 20) -> str:
        shown = self.logs[-lines:]
        if not shown:
            return self.summary()
        return "\n".join([f"{self.summary()}; its last log lines:",
                          *(f"  | {line}" for line in shown)])


@dataclass(frozen=True)
class Outcome:
    status: Literal["unchanged", "deployed", "rolled-back", "failed"]
    revision: int | None  # the revision recorded, or the deployed one when unchanged
    plan: Plan
    elapsed: float
    failure: Failure | None = None
    rolled_back_to: int | None = None  # None with rolled-back: back to nothing installed
    rollback_failure: Failure | None = None
    resumed: Revision | None = None  # an interrupted revision finished first

    @property
    def ok(self) -> bool:
        return self.status in ("unchanged", "deployed")


class Applier:
    def __init__(self, driver: Driver, progress: Progress = lambda message: None,
                 rollback: bool = True) -> None:
        self.driver = driver
        self.ledger = Ledger(driver.ledger_store())
        self.progress = progress
        self.rollback = rollback

    def run(self, change: Change, command: str) -> Outcome:
        """Apply `change` under the lock; raises LockHeld if another command holds it."""
        started = time.monotonic()
        with self.ledger.lock(command) as lock:
            resumed, finished = self.resume_pending(lock)
            if (finished is not None and not finished.ok
                    and resumed is not None and resumed.manifests == change.manifests):
                # The interrupted revision was this very change, and it failed: report
                # that rather than failing the same way a second time.
                return dataclasses.replace(finished, elapsed=time.monotonic() - started,
                                           resumed=resumed)
            desired = self.driver.desired_objects(change.manifests)
            steps = plan(desired, self.driver.observe(), self.driver.immutable_fields)
            last = self.ledger.last_deployed()
            if (not steps.has_changes and not change.restore and last is not None
                    and last.manifests == change.manifests):
                return Outcome("unchanged", last.number, steps, time.monotonic() - started,
                               resumed=resumed)
            revision = self.ledger.record_revision(
                origin=change.origin, description=change.description,
                bundle_version=change.bundle_version, bundle_digest=change.bundle_digest,
                config=change.config, secrets=change.secrets, manifests=change.manifests,
                images=change.images, restore=change.restore)
            self.progress(f"revision {revision.number} ({change.description}): "
                          f"{_counts(steps)}")
            outcome = self._finish(revision, steps, lock, gate_revision=None)
            return Outcome(outcome.status, outcome.revision, steps, time.monotonic() - started,
                           outcome.failure, outcome.rolled_back_to, outcome.rollback_failure,
                           resumed)

    def resume_pending(self, lock: LeaseKeeper) -> tuple[Revision | None, Outcome | None]:
        """Finish the revision an interrupted command left `pending`, if there is one:
        apply what is left of it and health-check everything it had applied already.
        Returns that revision as it ended, and how."""
        pending = self.ledger.pending()
        if pending is None:
            return None, None
        self.progress(f"revision {pending.number} ({pending.description}) was interrupted; "
                      "resuming it")
        desired = self.driver.desired_objects(pending.manifests)
        steps = plan(desired, self.driver.observe(), self.driver.immutable_fields)
        outcome = self._finish(pending, steps, lock, gate_revision=pending.number)
        return self.ledger.revision(pending.number), outcome

    def _finish(self, revision: Revision, steps: Plan, lock: LeaseKeeper,
                gate_revision: int | None) -> Outcome:
        """Apply the plan of a pending revision and mark it for what happened."""
        started = time.monotonic()
        failure = self._back_up(revision, steps, lock)
        if failure is None:
            failure = self.execute(steps, revision.number, lock, gate_revision,
                                   restore=revision.restore)
        if failure is None:
            self.ledger.mark(revision.number, "deployed")
            self.progress(f"revision {revision.number} deployed")
            return Outcome("deployed", revision.number, steps, time.monotonic() - started)
        self.progress(f"failed: {failure.summary()}")
        reason = _reason(failure)
        if not self.rollback:
            self.ledger.mark(revision.number, "failed", reason)
            return Outcome("failed", revision.number, steps, time.monotonic() - started, failure)
        target = self.ledger.last_deployed()
        where = f"revision {target.number}" if target else "nothing installed"
        self.progress(f"rolling back to {where}")
        back = plan(self.driver.desired_objects(target.manifests if target else {}),
                    self.driver.observe(), self.driver.immutable_fields)
        rollback_failure = self.execute(back, target.number if target else revision.number,
                                        lock, None)
        if rollback_failure is not None:
            self.ledger.mark(revision.number, "failed",
                             f"{reason}; rolling back to {where} failed too: "
                             f"{rollback_failure.summary()}")
            return Outcome("failed", revision.number, steps, time.monotonic() - started,
                           failure, None, rollback_failure)
        self.ledger.mark(revision.number, "rolled-back", reason)
        self.progress(f"rolled back to {where}")
        return Outcome("rolled-back", revision.number, steps, time.monotonic() - started,
                       failure, target.number if target else None)

    def _back_up(self, revision: Revision, steps: Plan, lock: LeaseKeeper) -> Failure | None:
        """Dump the data of each service with a `backup` that the plan changes, first."""
        for step in data_backup.steps_to_back_up(steps.steps, revision):
            lock.check()
            reason = data_backup.back_up(self.driver, self.ledger, revision, step,
                                         self.progress)
            if reason is not None:
                return Failure(step.key, step.service, reason)
        return None

    def execute(self, steps: Plan, revision: int, lock: LeaseKeeper,
                gate_revision: int | None = None,
                restore: dict[str, dict[str, Any]] | None = None) -> Failure | None:
        """Each service as soon as the services it depends on are healthy, every service
        whose dependencies are met in parallel (a thread each); deletions last. Objects
        left unchanged are gated too when they carry `gate_revision` (a resumed apply). A
        service in `restore` gets its data back once it is healthy, before the services
        that depend on it start."""
        services = _services(steps)
        total = len(steps.waves)
        waiting = sorted(services, key=lambda name: (services[name].wave, name))
        done: set[str] = set()
        failures: list[tuple[int, str, Failure]] = []
        running: dict[Future[Failure | None], str] = {}

        def run(service: _Service) -> Failure | None:
            work = [s for s in service.steps
                    if s.action != "unchanged" or _carries(s, gate_revision)]
            if work:
                self.progress(f"wave {service.wave}/{total}: {service.name}")
            return (self._service(work, revision, lock) if work else None) or self._restore(
                service.steps, restore or {}, lock)

        pool = ThreadPoolExecutor(max_workers=max(len(services), 1),
                                  thread_name_prefix="heliostat-apply")
        try:
            while True:
                if not failures:  # after a failure, nothing more starts
                    for name in [n for n in waiting if services[n].depends_on <= done]:
                        waiting.remove(name)
                        running[pool.submit(run, services[name])] = name
                if not running:
                    break
                finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    failure = future.result()  # a crash or an interrupt ends the apply here
                    if failure is None:
                        done.add(name)
                    else:
                        failures.append((services[name].wave, name, failure))
        finally:
            # Not waiting on an interrupt: Ctrl-C must not hang on a health gate.
            pool.shutdown(wait=False, cancel_futures=True)
        if failures:
            return min(failures, key=lambda f: f[:2])[2]
        # Deletions wave by wave, the latest first (the plan's order), each wave's at once.
        by_wave: dict[int, list[PlanStep]] = {}
        for step in steps.deletions:
            by_wave.setdefault(step.wave, []).append(step)
        for wave in by_wave.values():
            failure = _first_failure(_parallel(lambda s: self._delete(s, revision, lock), wave))
            if failure:
                return failure
        return None

    def _restore(self, steps: tuple[PlanStep, ...], restore: dict[str, dict[str, Any]],
                 lock: LeaseKeeper) -> Failure | None:
        for step in steps:
            desired = step.desired
            if desired is None or desired.backup is None or step.service not in restore:
                continue
            lock.check()
            reason = data_backup.restore(self.driver, self.ledger, desired.key, desired.backup,
                                         restore[step.service], self.progress)
            if reason is not None:
                return Failure(desired.key, step.service, reason)
        return None

    def _delete(self, step: PlanStep, revision: int, lock: LeaseKeeper) -> Failure | None:
        lock.check()
        try:
            self.driver.apply(step, revision)
        except LedgerError:
            raise
        except Exception as exc:  # the target refused: a failed step, not a crash
            return Failure(step.key, step.service, _error_text(exc))
        self.progress(f"  - deleted {step.key}")
        return None

    def _service(self, steps: list[PlanStep], revision: int,
                 lock: LeaseKeeper) -> Failure | None:
        """One service; the objects that need others of it in place (`applied_after`: a
        sidecar, a Kubernetes workload) after those, so that what they need is already as
        this revision wants."""
        later = [s for s in steps if s.desired is not None and s.desired.applied_after]
        first = [s for s in steps if s.desired is None or not s.desired.applied_after]
        return (self._objects(first, revision, lock)
                or self._objects(later, revision, lock))

    def _objects(self, steps: list[PlanStep], revision: int,
                 lock: LeaseKeeper) -> Failure | None:
        """New objects started together, then changed ones one at a time (apply, gate,
        next), so the others keep serving while one is replaced."""
        new = [s for s in steps if s.action == "create"]
        changed = [s for s in steps if s.action in ("update", "replace")]
        unchanged = [s for s in steps if s.action == "unchanged"]
        current: PlanStep | None = None
        try:
            for current in new:
                lock.check()
                self.progress(f"  + create {current.key}")
                self.driver.apply(current, revision)
            for current in [*new, *unchanged]:
                failure = self._gate(current)
                if failure:
                    return failure
            for current in changed:
                lock.check()
                fields = f" ({', '.join(current.changed)})" if current.changed else ""
                self.progress(f"  ~ {current.action} {current.key}{fields}")
                self.driver.apply(current, revision)
                failure = self._gate(current)
                if failure:
                    return failure
        except LedgerError:
            raise
        except Exception as exc:  # the target refused: a failed step, not a crash
            assert current is not None
            return Failure(current.key, current.service, _error_text(exc))
        return None

    def _gate(self, step: PlanStep) -> Failure | None:
        assert step.desired is not None
        health: Health = self.driver.wait(step, time.monotonic() + step.desired.health_timeout)
        if health.healthy:
            self.progress(f"    {step.key} healthy")
            return None
        return Failure(step.key, step.service, health.reason, health.logs)


def _parallel(work: Callable[[T], Failure | None], items: list[T]) -> list[Failure | None]:
    """`work` on every item in threads of its own; results in the items' order."""
    if len(items) == 1:
        return [work(items[0])]
    pool = ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="heliostat-apply")
    try:
        return list(pool.map(work, items))
    finally:
        # Not waiting on an interrupt: Ctrl-C must not hang on a health gate.
        pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class _Service:
    """A service's steps in a plan, its wave and the services it depends on."""

    name: str
    wave: int
    steps: tuple[PlanStep, ...]
    depends_on: frozenset[str]


def _services(steps: Plan) -> dict[str, _Service]:
    grouped: dict[str, list[PlanStep]] = {}
    for wave in steps.waves:
        for step in wave:
            grouped.setdefault(step.service, []).append(step)
    return {name: _Service(name, group[0].wave, tuple(group), frozenset(
        dependency for step in group if step.desired is not None
        for dependency in step.desired.depends_on) - {name})
        for name, group in grouped.items()}


def _first_failure(results: list[Failure | None]) -> Failure | None:
    return next((failure for failure in results if failure is not None), None)


def _carries(step: PlanStep, revision: int | None) -> bool:
    return revision is not None and step.live is not None and step.live.revision == revision


def _counts(steps: Plan) -> str:
    counts = steps.counts()
    return ", ".join(f"{n} to {action}" if action != "unchanged" else f"{n} unchanged"
                     for action, n in counts.items() if n)


def _reason(failure: Failure) -> str:
    logs = failure.logs[-LOG_LINES_KEPT:]
    return failure.summary() + ("".join(f"\n  | {line}" for line in logs) if logs else "")


def _error_text(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
