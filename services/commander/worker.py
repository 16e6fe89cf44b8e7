"""The worker: runs queued operations one at a time through heliostat's one change path,
`Target.change` and `Applier.run`, under the ledger's lock like any CLI command.

While another command holds the lock (a CLI `upgrade`), the operation waits and tries
again; it never fails for that, and it is built again on top of whatever that command
deployed. Whatever goes wrong otherwise ends the operation `failed` with the reason, and
the worker goes on with the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from commander import metrics
from commander.audit import AuditLog
from commander.guard import GuardedDriver, Stale
from commander.operations import Operation, OperationQueue, OperationStore
from commander.platform_state import PlatformState, Refused
from heliostat.apply import Applier, Change, Outcome
from heliostat.ledger_lock import LedgerError, LockHeld
from heliostat.problems import InvalidInput
from heliostat.target import Target

log = logging.getLogger(__name__)

# A revision's status in the ledger -> how an operation that made it ended.
_STATUS_OF = {"deployed": "deployed", "superseded": "deployed", "rolled-back": "rolled-back",
              "failed": "failed"}


class Worker:
    def __init__(self, platform: PlatformState, store: OperationStore, queue: OperationQueue,
                 audit: AuditLog, lock_retry_seconds: float = 2.0) -> None:
        self.platform = platform
        self.store = store
        self.queue = queue
        self.audit = audit
        self.lock_retry_seconds = lock_retry_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="commander-worker",
                                        daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            operation = self.queue.take(timeout=1.0)
            metrics.QUEUE_DEPTH.set(self.queue.depth())
            if operation is None:
                continue
            try:
                self.run(operation)
            except Exception:  # recording its end failed (a full disk): log, go on
                log.exception("operation %s could not be recorded", operation.id)
            finally:
                self.queue.done()

    def run(self, operation: Operation) -> Operation:
        """Carry `operation` out to its end, and record how it ended."""
        progress = self._progress(operation.id)
        self.store.update(operation.id, state="running")
        try:
            change, outcome = self._apply(operation, progress)
        except Refused as exc:
            return self._finish(operation, "failed", reason=exc.message)
        except InvalidInput as exc:
            return self._finish(operation, "failed", reason=f"invalid configuration: {exc}")
        except LedgerError as exc:
            return self._finish(operation, "failed", reason=str(exc))
        except Exception as exc:  # a bug or the engine failing: the operation ends, we go on
            log.exception("operation %s failed unexpectedly", operation.id)
            return self._finish(operation, "failed", reason=f"{type(exc).__name__}: {exc}")
        status, revision = self._carried_out(operation, change, outcome)
        reason = ""
        if outcome.failure is not None:
            reason = outcome.failure.text(10)
            if outcome.rollback_failure is not None:
                reason += f"; rolling back failed too: {outcome.rollback_failure.summary()}"
        return self._finish(operation, status, reason=reason, revision=revision,
                            rolled_back_to=outcome.rolled_back_to)

    def _apply(self, operation: Operation,
               progress: Callable[[str], None]) -> tuple[Change, Outcome]:
        """Build the change and apply it. While another command holds the lock, wait and
        try again; when that command changed what is deployed, build it again on top."""
        waiting = False

        def applying(line: str) -> None:
            # Applier.run says something only once it holds the lock.
            nonlocal waiting
            if waiting:
                waiting = False
                self.store.update(operation.id, state="running")
            progress(line)

        while True:
            last = self.platform.ledger.last_deployed()
            target, change = self._change(operation)
            guarded = GuardedDriver(target.driver, self.platform.ledger, change,
                                    last.number if last is not None else None)
            try:
                return change, Applier(guarded, applying, rollback=True).run(
                    change, operation.description)
            except LockHeld as held:
                if not waiting:
                    waiting = True
                    self.store.update(operation.id, state="waiting")
                    progress(f"waiting: {held.lease.holder.describe()} holds the platform's "
                             "lock")
                time.sleep(self.lock_retry_seconds)
            except Stale as exc:
                progress(f"{exc}: building the change again on top of it")

    def _carried_out(self, operation: Operation, change: Change,
                     outcome: Outcome) -> tuple[str, int | None]:
        """How the operation ended, and its revision. A Commander killed while it applied
        left the revision pending (Applier.run resumed it first: `resumed`) or had
        finished it without recording so; then this run finds nothing left to do, and the
        operation ended as that revision did, not `unchanged`."""
        resumed = outcome.resumed
        if resumed is not None and resumed.manifests == change.manifests:
            return _STATUS_OF.get(resumed.status, outcome.status), resumed.number
        if outcome.status == "unchanged" and outcome.revision is not None:
            last = self.platform.ledger.revision(outcome.revision)
            if (last.origin == "commander" and last.description == operation.description
                    and _not_before(last.created_at, operation.created_at)):
                return "deployed", last.number
        return outcome.status, outcome.revision

    def _change(self, operation: Operation) -> tuple[Target, Change]:
        """The change, built from what is deployed now: operations queued before it have
        run, and it applies on top of them (GuardedDriver checks that, under the lock)."""
        if operation.kind == "rollback":
            assert operation.revision is not None
            chosen = self.platform.revision(operation.revision)
            if chosen.status not in ("deployed", "superseded") or not chosen.manifests:
                raise Refused(409, f"revision {chosen.number} was never deployed "
                                   f"({chosen.status}); roll back to one that was")
            target = self.platform.target(self.platform.config(
                chosen.config, f"revision {chosen.number}"))
            return target, target.change(operation.description, manifests=chosen.manifests,
                                         config=chosen.config, origin="commander")
        self._check_renders_as_deployed()
        config = self.platform.image_change_config(operation.services, operation.image,
                                                   operation.description)
        target = self.platform.target(config)
        return target, target.change(operation.description, origin="commander")

    def _check_renders_as_deployed(self) -> None:
        """An image update renders the deployed config again with Commander's own catalog
        and profiles. Were those not the deploying installer's (another heliostat
        version), it would change more than the image: refuse it instead."""
        last = self.platform.ledger.last_deployed()
        if last is None or not last.manifests:
            return
        target = self.platform.target(self.platform.config(last.config,
                                                           f"revision {last.number}"))
        again = target.change(f"revision {last.number} again", origin="commander").manifests
        differing = sorted(name for name in set(again) | set(last.manifests)
                           if again.get(name) != last.manifests.get(name))
        if differing:
            raise Refused(409, f"Commander renders revision {last.number}'s configuration "
                               f"otherwise than the installer that deployed it did "
                               f"(in {', '.join(differing[:3])}: another heliostat "
                               "version?), so an image update would "
                               "change more than the image; bring the platform and Commander "
                               "to one version with `heliostat upgrade`, then ask again")

    def _progress(self, operation_id: str) -> Callable[[str], None]:
        def show(line: str) -> None:
            self.store.add_event(operation_id, line)
            log.info(line, extra={"operation": operation_id})

        return show

    def _finish(self, operation: Operation, state: str, **fields: object) -> Operation:
        finished = self.store.update(operation.id, state=state, **fields)
        self.store.add_event(operation.id, f"finished: {state}"
                             + (f": {finished.reason}" if finished.reason else ""))
        metrics.OPERATIONS.labels(operation.kind, state).inc()
        self.audit.append(who=operation.who, remote=operation.remote, action=operation.kind,
                          target=operation.description, outcome=state,
                          detail=finished.reason, operation=operation.id)
        log.info("operation finished", extra={"operation": operation.id, "state": state,
                                              "revision": finished.revision})
        return finished


def _not_before(recorded: str, asked: str) -> bool:
    """The ledger keeps whole seconds, operations milliseconds."""
    return (datetime.fromisoformat(recorded)
            >= datetime.fromisoformat(asked).replace(microsecond=0))
