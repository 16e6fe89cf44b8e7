"""gunicorn settings for the Event API (``-c python:clickstream.gunicorn_conf``).

Threaded workers: a request mostly waits for Kafka's acknowledgement, and the threads
of one process share one producer, so their events travel in the same batches.
"""

import logging
import os
import shutil
import sys
import tempfile

from gunicorn import glogging

from clickstream.jsonlog import JsonFormatter, configure_logging

bind = os.environ.get("EVENT_API_BIND", "0.0.0.0:8080")
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
worker_class = "gthread"
threads = int(os.environ.get("EVENT_API_THREADS", "16"))
keepalive = 30
timeout = 30
graceful_timeout = 20
# No runtime control socket: nothing here uses it, and replicas would share its path.
control_socket_disable = True

# Metrics from all workers are aggregated through files in this directory; it must
# be set before prometheus_client is first imported (by the app, in each worker).
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="clickstream-metrics-")
)


class JsonLogger(glogging.Logger):
    """gunicorn's own messages as JSON lines on stdout, and no access log: a line per
    tracking request would cost more than the request (metrics count them instead)."""

    access_log_enabled = False

    def setup(self, cfg) -> None:
        super().setup(cfg)
        level = os.environ.get("LOG_LEVEL", "INFO").upper()
        configure_logging(level)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        self.error_log.handlers[:] = [handler]
        self.error_log.propagate = False


logger_class = JsonLogger


def on_starting(server) -> None:
    # Files left by a previous run would add stale counts.
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.makedirs(_metrics_dir, exist_ok=True)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
