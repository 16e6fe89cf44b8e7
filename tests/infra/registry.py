"""A private Docker registry (Debian's docker-registry, distribution 2.8) on a free loopback
port, with storage per session. The engine treats 127.0.0.0/8 registries as insecure by
default, so plain HTTP pushes work without daemon configuration."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from tests.infra.processes import LoopbackServer, ManagedProcess, free_port
from tests.infra.run_dir import RunDir
from tests.infra.settings import NotProvisioned

CONFIG = """\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: heliostat-testbed
"""

NOTIFICATIONS = """\
notifications:
  endpoints:
    - name: test
      url: {url}
      timeout: 2s
      threshold: 3
      backoff: 1s
"""


class Registry(LoopbackServer):
    def __init__(self, run: RunDir) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise NotProvisioned("docker-registry is not installed; run `make testbed`")
        self.port = free_port()
        home = run.subdir("registry")
        self._storage = home / "storage"
        self._config = home / "config.yml"
        self._write_config(None)
        self._process = ManagedProcess("registry", [binary, "serve", str(self._config)], run)

    @property
    def url(self) -> str:
        """`127.0.0.1:PORT`, the form image references use."""
        return f"127.0.0.1:{self.port}"

    def _write_config(self, notify_url: str | None) -> None:
        text = CONFIG.format(storage=self._storage, port=self.port)
        if notify_url:
            text += NOTIFICATIONS.format(url=notify_url)
        self._config.write_text(text)

    @property
    def _readiness(self) -> str:
        return f"GET http://{self.url}/v2/"

    @contextmanager
    def with_notifications(self, url: str) -> Iterator[Registry]:
        """Restarts the registry notifying `url` of every event; restored to none afterwards.
        Storage is kept across the restarts."""
        self.stop()
        self._write_config(url)
        self.start()
        try:
            yield self
        finally:
            self.stop()
            self._write_config(None)
            self.start()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.url}/v2/", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False
