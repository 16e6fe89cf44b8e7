"""gunicorn settings for Pilot (`gunicorn -c python:pilot.gunicorn_conf "pilot.app:create_app()"`).

The app is loaded once, in the master, before the workers fork (`preload_app`): start-up
(waiting for Postgres, the migration, the first account) happens once per replica and
a failure stops gunicorn with its reason instead of workers failing one by one. The
workers keep no state of their own (sessions and login counts live in Postgres), so any
of them, in any replica, can answer any request.
"""

import logging
import os
import shutil
import sys
import tempfile
from typing import Any

from gunicorn import glogging

from clickstream.jsonlog import JsonFormatter, configure_logging  # one format, platform-wide

bind = os.environ.get("PILOT_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("PILOT_THREADS", "8"))
preload_app = True
keepalive = 30
timeout = 60
graceful_timeout = 20
# No runtime control socket: nothing here uses it, and replicas would share its path.
control_socket_disable = True

# Metrics of all workers are added up through files in this directory; it must be set
# before prometheus_client is first imported (by the app, in the master here).
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="pilot-metrics-"))
shutil.rmtree(_metrics_dir, ignore_errors=True)  # a previous run's counts would linger
os.makedirs(_metrics_dir, exist_ok=True)
configure_logging(os.environ.get("LOG_LEVEL", "INFO").upper())


class JsonLogger(glogging.Logger):
    """gunicorn's own messages as JSON lines on stdout; requests are logged by the app
    (with the user) and counted in /metrics, so no access log."""

    access_log_enabled = False

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        self.error_log.handlers[:] = [handler]
        self.error_log.propagate = False


logger_class = JsonLogger


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
