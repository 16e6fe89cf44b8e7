"""Compare desired objects with live ones: what to create, update, replace or delete.

Services are layered into dependency waves (a service is in the wave after the last of
its dependencies), and every object of a service is in its service's wave: no service
applies before the waves it depends on (apply starts each one as soon as its own
dependencies are healthy). Deletions come last, the latest wave first, so nothing loses
a dependency while it still runs. The plan is pure data: `diff` prints it, `install` executes it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from heliostat.driver import Action, DesiredObject, LiveObject, PlanStep

ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete", "unchanged")
# A spec whose applied version is unknown changed in ways we cannot list.
UNKNOWN_FIELDS = "*"


class PlanError(Exception):
    """The desired objects cannot be planned: a dependency cycle, an unknown dependency,
    a key used twice. These come from the catalog, so they are bugs, not user input."""


@dataclass(frozen=True)
class Plan:
    waves: tuple[tuple[PlanStep, ...], ...]  # waves[0] is wave 1: services with no dependencies
    deletions: tuple[PlanStep, ...]  # after every wave, latest wave first

    @property
    def steps(self) -> tuple[PlanStep, ...]:
        """Every step in the order they run."""
        return tuple(step for wave in self.waves for step in wave) + self.deletions

    @property
    def has_changes(self) -> bool:
        return any(step.action != "unchanged" for step in self.steps)

    def counts(self) -> dict[Action, int]:
        counts: dict[Action, int] = dict.fromkeys(ACTIONS, 0)
        for step in self.steps:
            counts[step.action] += 1
        return counts

    def text(self) -> str:
        """The plan for a person, like `terraform plan`: changes per wave, then a summary."""
        counts = self.counts()
        if not self.has_changes:
            return f"No changes: {counts['unchanged']} objects unchanged.\n"
        lines = []
        for number, wave in enumerate(self.waves, start=1):
            lines.append(f"wave {number}: {', '.join(_services(wave))}")
            lines.extend(_step_line(step) for step in wave if step.action != "unchanged")
            unchanged = sum(step.action == "unchanged" for step in wave)
            if unchanged:
                lines.append(f"      {unchanged} unchanged")
        if self.deletions:
            lines.append("deletions")
            lines.extend(_step_line(step) for step in self.deletions)
        lines.append(f"Plan: {counts['create']} to create, {counts['update']} to update, "
                     f"{counts['replace']} to replace, {counts['delete']} to delete; "
                     f"{counts['unchanged']} unchanged.")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """The plan for scripts (`--output json`)."""
        return {
            "changes": self.has_changes,
            "summary": self.counts(),
            "waves": [{"wave": number, "services": _services(wave),
                       "steps": [_step_json(step) for step in wave]}
                      for number, wave in enumerate(self.waves, start=1)],
            "deletions": [_step_json(step) for step in self.deletions],
        }


def plan(desired: Iterable[DesiredObject], live: Mapping[str, LiveObject],
         immutable: Collection[str] = frozenset()) -> Plan:
    """Plan the way from `live` to `desired`. `immutable` names the top-level spec fields
    the target cannot change in place: a change to one of them is a replace."""
    desired = list(desired)
    keys = [obj.key for obj in desired]
    if len(set(keys)) != len(keys):
        twice = sorted({key for key in keys if keys.count(key) > 1})
        raise PlanError(f"objects desired twice: {', '.join(twice)}")
    wave_of = service_waves(desired)
    waves: list[list[PlanStep]] = [[] for _ in range(max(wave_of.values(), default=0))]
    for obj in sorted(desired, key=lambda o: o.key):
        wave = wave_of[obj.service]
        waves[wave - 1].append(_step(obj, live.get(obj.key), wave, immutable))
    wanted = set(keys)
    gone = [obj for key, obj in live.items() if key not in wanted]
    deletions = [PlanStep("delete", obj.key, obj.wave, None, obj)
                 for obj in sorted(gone, key=lambda o: (-o.wave, o.key))]
    return Plan(tuple(tuple(wave) for wave in waves), tuple(deletions))


def service_waves(desired: Iterable[DesiredObject]) -> dict[str, int]:
    """Each service's wave, from 1: one more than the latest wave it depends on."""
    needs: dict[str, set[str]] = {}
    for obj in desired:
        needs.setdefault(obj.service, set()).update(obj.depends_on)
    for service in sorted(needs):
        unknown = sorted(needs[service] - needs.keys())
        if unknown:
            raise PlanError(f"{service} depends on {', '.join(unknown)}, "
                            "which no desired object belongs to")
    waves: dict[str, int] = {}
    path: list[str] = []  # the services being placed, for naming a cycle

    def place(service: str) -> int:
        if service in waves:
            return waves[service]
        if service in path:
            cycle = [*path[path.index(service):], service]
            raise PlanError(f"services depend on each other in a cycle: {' -> '.join(cycle)}")
        path.append(service)
        wave = 1 + max((place(dependency) for dependency in sorted(needs[service])), default=0)
        path.pop()
        waves[service] = wave
        return wave

    for service in sorted(needs):
        place(service)
    return waves


def changed_fields(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where two specs differ: `env.KAFKA_BOOTSTRAP`, `ports[0].port`.

    A list that changed length is reported as a whole; so is a value that changed type.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        fields = []
        for key in sorted(old.keys() | new.keys(), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key in old and key in new:
                fields.extend(changed_fields(old[key], new[key], where))
            else:
                fields.append(where)
        return fields
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [field for index, (a, b) in enumerate(zip(old, new, strict=True))
                for field in changed_fields(a, b, f"{path}[{index}]")]
    # type() too: JSON tells 1 from true and 1 from 1.0, and so does the spec hash.
    same = type(old) is type(new) and old == new
    return [] if same else [path or UNKNOWN_FIELDS]


def _step(obj: DesiredObject, live: LiveObject | None, wave: int,
          immutable: Collection[str]) -> PlanStep:
    if live is None:
        return PlanStep("create", obj.key, wave, obj, None)
    if live.spec_hash == obj.spec_hash:
        return PlanStep("unchanged", obj.key, wave, obj, live)
    if live.spec is None:
        # Without the applied spec we cannot prove an immutable field unchanged; an update
        # lets the target refuse loudly rather than deleting a stateful object on a guess.
        return PlanStep("update", obj.key, wave, obj, live, (UNKNOWN_FIELDS,))
    fields = tuple(changed_fields(live.spec, obj.spec))
    replace = any(_top_level(field) in immutable for field in fields)
    return PlanStep("replace" if replace else "update", obj.key, wave, obj, live, fields)


def _top_level(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _services(steps: Iterable[PlanStep]) -> list[str]:
    return sorted({step.service for step in steps})


_SYMBOLS: dict[Action, str] = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}


def _step_line(step: PlanStep) -> str:
    fields = f"  ({', '.join(step.changed)})" if step.changed else ""
    return f"  {_SYMBOLS[step.action]:>3} {step.action:<7} {step.key}{fields}"


def _step_json(step: PlanStep) -> dict[str, Any]:
    return {
        "action": step.action,
        "key": step.key,
        "service": step.service,
        "wave": step.wave,
        "changed": list(step.changed),
        "desired_hash": step.desired.spec_hash if step.desired else None,
        "live_hash": step.live.spec_hash if step.live else None,
        "live_revision": step.live.revision if step.live else None,
    }
