#!/usr/bin/python3
"""The Celery worker's log-rotation sidecar: deletes task logs older than the retention,
then the folders left empty, at start and every interval (and at once on SIGHUP), and
says what it deleted, one JSON line each. It also serves /metrics beside the worker (they
share a network namespace), so that Prometheus sees how full the log volume is.

Debian's python3 and its standard library only: it must stay small beside the worker.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def log(event: str, **fields: object) -> None:
    print(json.dumps({"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "logger": "log-rotation", "event": event, **fields}), flush=True)


class Rotation:
    """One log folder, its retention, and the counters of what was deleted."""

    def __init__(self, folder: Path, retention_days: float) -> None:
        self.folder = folder
        self.retention_seconds = retention_days * 86400
        self.deleted_files = 0
        self.deleted_folders = 0
        self.freed_bytes = 0
        self.errors = 0
        self.passes = 0
        self.last_pass = 0.0
        self.lock = threading.Lock()

    def run_pass(self) -> None:
        started = time.time()
        cutoff = started - self.retention_seconds
        files = folders = freed = errors = 0
        emptied: set[str] = set()  # folders this pass deleted something from
        # Bottom-up, so that a folder emptied by this pass is seen empty in the same pass.
        for root, _folders, names in os.walk(self.folder, topdown=False):
            for name in names:
                path = os.path.join(root, name)
                try:
                    stat = os.lstat(path)
                    if stat.st_mtime >= cutoff:
                        continue
                    os.unlink(path)
                except FileNotFoundError:
                    continue  # the worker removed it meanwhile
                except OSError as error:
                    errors += 1
                    log("error", path=path, error=error.strerror)
                    continue
                files += 1
                freed += stat.st_size
                emptied.add(root)
                log("deleted", path=path, bytes=stat.st_size,
                    age_days=round((started - stat.st_mtime) / 86400, 1))
            if Path(root) == self.folder:
                continue
            try:
                # An empty folder the worker made a moment ago is about to get a log:
                # only folders this pass emptied, or empty for the whole retention, go.
                if not os.listdir(root) and (root in emptied
                                             or os.lstat(root).st_mtime < cutoff):
                    os.rmdir(root)
                    folders += 1
                    emptied.add(os.path.dirname(root))
                    log("deleted", path=root, folder=True)
            except FileNotFoundError:
                continue
            except OSError as error:
                errors += 1
                log("error", path=root, error=error.strerror)
        with self.lock:
            self.deleted_files += files
            self.deleted_folders += folders
            self.freed_bytes += freed
            self.errors += errors
            self.passes += 1
            self.last_pass = time.time()
        log("pass", deleted_files=files, deleted_folders=folders, freed_bytes=freed,
            errors=errors, seconds=round(time.time() - started, 3))

    def metrics(self) -> str:
        volume = os.statvfs(self.folder)
        size = volume.f_blocks * volume.f_frsize
        used = (volume.f_blocks - volume.f_bfree) * volume.f_frsize
        with self.lock:
            values = [
                ("airflow_log_volume_size_bytes", "gauge",
                 "Size of the log volume's filesystem.", size),
                ("airflow_log_volume_used_bytes", "gauge",
                 "Bytes used on the log volume's filesystem.", used),
                ("airflow_log_volume_used_ratio", "gauge",
                 "Used share of the log volume's filesystem, 0 to 1.", used / size if size else 0),
                ("airflow_log_rotation_deleted_files_total", "counter",
                 "Log files deleted for their age.", self.deleted_files),
                ("airflow_log_rotation_deleted_folders_total", "counter",
                 "Empty log folders deleted.", self.deleted_folders),
                ("airflow_log_rotation_freed_bytes_total", "counter",
                 "Bytes of the deleted log files.", self.freed_bytes),
                ("airflow_log_rotation_errors_total", "counter",
                 "Files or folders that could not be deleted.", self.errors),
                ("airflow_log_rotation_passes_total", "counter",
                 "Passes over the log folder.", self.passes),
                ("airflow_log_rotation_last_pass_timestamp_seconds", "gauge",
                 "When the last pass ended.", self.last_pass),
            ]
        lines = []
        for name, kind, help_text, value in values:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(lines) + "\n"


def serve_metrics(rotation: Rotation, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                body, status = rotation.metrics().encode(), 200
                kind = "text/plain; version=0.0.4"
            elif self.path == "/health":
                body, status, kind = b'{"status": "ok"}\n', 200, "application/json"
            else:
                body, status, kind = b'{"error": "not found"}\n', 404, "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # a scrape every few seconds is not news

    server = ThreadingHTTPServer(("", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, default=Path("/opt/airflow/logs"))
    parser.add_argument("--retention-days", type=float, required=True)
    parser.add_argument("--interval-seconds", type=float, default=3600)
    parser.add_argument("--metrics-port", type=int, default=9101)
    args = parser.parse_args()
    if not args.folder.is_dir():
        print(f"log-rotation: {args.folder} is not a folder", file=sys.stderr)
        return 2

    rotation = Rotation(args.folder, args.retention_days)
    wake = threading.Event()
    stop = threading.Event()
    signal.signal(signal.SIGHUP, lambda *_: wake.set())
    signal.signal(signal.SIGTERM, lambda *_: (stop.set(), wake.set()))
    serve_metrics(rotation, args.metrics_port)
    log("start", folder=str(args.folder), retention_days=args.retention_days,
        interval_seconds=args.interval_seconds)
    while not stop.is_set():
        rotation.run_pass()
        wake.wait(args.interval_seconds)
        wake.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
