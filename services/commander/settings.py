"""Commander's settings, from the environment its module.yaml gives it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class SettingsError(Exception):
    """A setting is missing or unreadable; Commander cannot start."""


@dataclass(frozen=True)
class Settings:
    platform: str
    state_dir: Path  # the platform's own: the ledger's directory
    token: str
    webhook_secret: str
    log_level: str = "INFO"
    lock_retry_seconds: float = 2.0  # between tries while a CLI command holds the lock

    @property
    def data_dir(self) -> Path:
        """Commander's own files (operations, audit log), beside the ledger's."""
        return self.state_dir / "commander"

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            platform=_required("COMMANDER_PLATFORM"),
            state_dir=Path(_required("COMMANDER_STATE_DIR")),
            token=_secret("COMMANDER_TOKEN_FILE"),
            webhook_secret=_secret("COMMANDER_WEBHOOK_SECRET_FILE"),
            log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
            lock_retry_seconds=float(os.environ.get("COMMANDER_LOCK_RETRY_SECONDS", "2")),
        )


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SettingsError(f"{name} is not set")
    return value


def _secret(variable: str) -> str:
    path = Path(_required(variable))
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise SettingsError(f"{variable}: {path} is empty")
    return value
