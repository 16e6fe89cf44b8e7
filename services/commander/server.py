"""gunicorn, embedded: one worker process with threads.

One process because the operation queue and its worker thread live in it: two
processes would be two queues racing for the ledger's lock. Threads because an
operation's event stream holds its request open for as long as the operation runs.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from commander.jsonlog import JsonFormatter, configure_logging
from commander.settings import Settings


class JsonLogger(glogging.Logger):
    """gunicorn's own messages as JSON lines on stdout; requests are counted in /metrics
    and changes are in the audit log, so no access log."""

    access_log_enabled = False

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        self.error_log.handlers[:] = [handler]
        self.error_log.propagate = False


class CommanderServer(BaseApplication):
    def __init__(self, settings: Settings, bind: str, threads: int) -> None:
        self.settings = settings
        self.options = {
            "bind": bind, "workers": 1, "worker_class": "gthread", "threads": threads,
            "timeout": 60, "graceful_timeout": 20, "keepalive": 30,
            "logger_class": JsonLogger, "control_socket_disable": True,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self) -> Any:
        # In the worker process, after the fork: the worker thread must start there.
        from commander.api import create_app

        configure_logging(self.settings.log_level)
        return create_app(self.settings)


def run(settings: Settings, bind: str, threads: int) -> None:
    configure_logging(settings.log_level)
    CommanderServer(settings, bind, threads).run()
