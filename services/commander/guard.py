"""The checks a Commander change passes once the Applier holds the ledger's lock, and
before it records a revision: the change was built on the revision deployed now (not on
one a CLI command has since replaced), and it would not replace Commander itself.

`Applier.run` takes the lock itself, so these run where it first asks the driver for the
change's objects: `GuardedDriver` is the target's driver with that one call checked.
"""

from __future__ import annotations

from typing import Any

from commander.platform_state import SELF, Refused
from heliostat.apply import Change
from heliostat.driver import DesiredObject
from heliostat.ledger import Ledger
from heliostat.plan import plan


class Stale(Exception):
    """What is deployed changed since the change was built: build it again."""


class GuardedDriver:
    def __init__(self, driver: Any, ledger: Ledger, change: Change,
                 built_on: int | None) -> None:
        self._driver = driver
        self._ledger = ledger
        self._change = change
        self._built_on = built_on  # the deployed revision the change starts from
        self.checked = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def desired_objects(self, manifests: dict[str, str]) -> list[DesiredObject]:
        desired = self._driver.desired_objects(manifests)
        # Resuming an interrupted revision, or rolling back, asks for other objects (and
        # with a revision pending); the change's own are asked for once, before any step.
        if (not self.checked and manifests == self._change.manifests
                and self._ledger.pending() is None):
            self.checked = True
            self._check(desired)
        return desired

    def _check(self, desired: list[DesiredObject]) -> None:
        last = self._ledger.last_deployed()
        now = last.number if last is not None else None
        if now != self._built_on:
            raise Stale(f"revision {now} was deployed since the change was built on "
                        f"revision {self._built_on}")
        steps = plan(desired, self._driver.observe(), self._driver.immutable_fields)
        touched = sorted({s.key for s in steps.steps
                          if s.service == SELF and s.action != "unchanged"})
        if touched:
            # Commander applies from inside its own container: replacing or removing it
            # would stop the apply half-way.
            raise Refused(409, f"this change would replace Commander itself "
                               f"({', '.join(touched)}); make it with the heliostat CLI "
                               "(`heliostat upgrade` or `heliostat rollback`)")
