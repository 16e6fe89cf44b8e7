"""The registry's notifications (Docker distribution's envelope) and what each one means
for the platform: an image update of some services, or nothing (and why).

    {"events": [{"id": "…", "action": "push", "timestamp": "…",
                 "target": {"mediaType": "…manifest…", "repository": "airflow",
                            "tag": "1.4.2", "digest": "sha256:…", "url": "…"},
                 "request": {"addr": "…", "host": "registry:5000", "method": "PUT"},
                 "actor": {}, "source": {"addr": "…"}}]}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_REPOSITORY = re.compile(r"[a-z0-9]+([._/-][a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


class MalformedEnvelope(ValueError):
    """The body is not a notification envelope; the message says what is wrong."""


@dataclass(frozen=True)
class RegistryEvent:
    id: str
    action: str
    repository: str
    tag: str
    digest: str
    host: str  # the registry as the pushing client named it (`request.host`)
    media_type: str

    def summary(self) -> str:
        what = f"{self.repository}:{self.tag}" if self.tag else self.repository
        return f"{self.action} {what}" + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class Rollout:
    """A push to roll out: these services (and groups) onto `image`."""

    event: RegistryEvent
    names: tuple[str, ...]  # services or groups, as the mapping names them
    image: str  # `<registry>/<repository>@<digest>`: by digest, so a re-tag changes nothing


@dataclass(frozen=True)
class Ignored:
    event: RegistryEvent
    reason: str


def parse_envelope(document: Any) -> list[RegistryEvent]:
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise MalformedEnvelope("expected an object with an `events` list")
    events = []
    for index, raw in enumerate(document["events"]):
        if not isinstance(raw, dict):
            raise MalformedEnvelope(f"events[{index}] is not an object")
        target = raw.get("target")
        request = raw.get("request") or {}
        if not isinstance(target, dict) or not isinstance(request, dict):
            raise MalformedEnvelope(f"events[{index}]: `target` and `request` must be objects")
        fields = {"action": raw.get("action"), "target.repository": target.get("repository")}
        for name, value in fields.items():
            if not isinstance(value, str) or not value:
                raise MalformedEnvelope(f"events[{index}].{name} must be a non-empty string")
        optional = {"id": raw.get("id", ""), "target.tag": target.get("tag", ""),
                    "target.digest": target.get("digest", ""),
                    "target.mediaType": target.get("mediaType", ""),
                    "request.host": request.get("host", "")}
        for name, value in optional.items():
            if value is not None and not isinstance(value, str):
                raise MalformedEnvelope(f"events[{index}].{name} must be a string")
        events.append(RegistryEvent(
            id=optional["id"] or "", action=fields["action"],
            repository=fields["target.repository"], tag=optional["target.tag"] or "",
            digest=optional["target.digest"] or "", host=optional["request.host"] or "",
            media_type=optional["target.mediaType"] or ""))
    return events


def classify(event: RegistryEvent, repositories: list[dict[str, Any]]) -> Rollout | Ignored:
    """What the platform's mapping (`modules.commander.repositories`) makes of `event`."""
    if event.action != "push":
        return Ignored(event, f"a {event.action}, not a push")
    if not event.tag:
        return Ignored(event, "a push without a tag (a layer, or a manifest by digest)")
    mapping = next((m for m in repositories if m.get("repository") == event.repository), None)
    if mapping is None:
        known = ", ".join(sorted(str(m.get("repository")) for m in repositories)) or "none"
        return Ignored(event, f"repository {event.repository} is not mapped to any service "
                              f"(modules.commander.repositories maps: {known})")
    pattern = str(mapping.get("tags") or "")
    try:
        matches = re.fullmatch(pattern, event.tag) is not None
    except re.error as exc:
        return Ignored(event, f"the tag pattern {pattern!r} is not a valid expression: {exc}")
    if not matches:
        return Ignored(event, f"tag {event.tag} does not match the pattern {pattern!r}")
    if not _DIGEST.fullmatch(event.digest):
        return Ignored(event, f"the push carries no sha256 digest ({event.digest!r})")
    registry = str(mapping.get("registry") or event.host)
    if not _HOST.fullmatch(registry) or not _REPOSITORY.fullmatch(event.repository):
        return Ignored(event, f"cannot name the image: registry {registry!r}, "
                              f"repository {event.repository!r}")
    return Rollout(event, tuple(mapping["services"]),
                   f"{registry}/{event.repository}@{event.digest}")
