"""A rolling swap behind a gateway loses no request: a load loop through nginx (configured
like the platform's gateway: names resolved at request time) while the service behind it
is upgraded counts every non-2xx answer and connection error, and expects none."""

import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import docker

from heliostat.apply import Applier, Change
from heliostat.drivers.compose import ComposeDriver
from tests.infra.compose_platforms import free_port

SERVER = r'''
import os, signal, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Version(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.01)
        body = os.environ["VERSION"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("0.0.0.0", 8000), Version)
server.daemon_threads = False  # a graceful stop finishes the requests it has
# The image is the gateway's, whose stop signal is nginx's graceful one, SIGQUIT.
for stop in (signal.SIGTERM, signal.SIGQUIT):
    signal.signal(stop, lambda *_: threading.Thread(target=server.shutdown).start())
server.serve_forever()
server.server_close()
'''

NGINX = '''
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  resolver 127.0.0.11 valid=10s ipv6=off;
  # A stopped container's address answers nothing for as long as it stays cached: give
  # up on it quickly and try the next address (as bundles/core/files/nginx.conf.j2 does).
  proxy_connect_timeout 2s;
  server {
    listen 8080;
    location = /healthz { return 200 "ok"; }
    location / {
      set $upstream http://web:8000;
      proxy_pass $upstream;
    }
  }
}
'''


def compose_file(platform: str, port: int, version: str) -> dict[str, str]:
    def probe(port: int, path: str) -> str:
        return ('[CMD, python3, -c, "import urllib.request; urllib.request.urlopen('
                f"'http://127.0.0.1:{port}{path}', timeout=2)\"]")

    def content(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") \
            .replace("$", "$$") + '"'

    labels = "io.heliostat.platform: {p}, io.heliostat.service: {s}, io.heliostat.kind: stateless"
    return {"compose.yaml": textwrap.dedent(f"""\
        name: {platform}
        services:
          web:
            image: heliostat/gateway:0.1.0
            command: [python3, /etc/web/server.py]
            environment: {{VERSION: "{version}"}}
            labels: {{{labels.format(p=platform, s="web")}}}
            networks: {{platform: {{aliases: [web]}}}}
            configs: [{{source: web-server, target: /etc/web/server.py}}]
            healthcheck: {{test: {probe(8000, "/")}, interval: 1s, timeout: 2s, retries: 2}}
            restart: unless-stopped
            deploy: {{replicas: 1, update_config: {{order: start-first}}}}
          gateway:
            image: heliostat/gateway:0.1.0
            command: [nginx, -g, "daemon off;", -c, /etc/nginx/nginx.conf]
            environment: {{}}
            labels: {{{labels.format(p=platform, s="gateway")}}}
            networks: {{platform: {{aliases: [gateway]}}}}
            ports: [{{target: 8080, published: {port}, protocol: tcp}}]
            configs: [{{source: gateway-conf, target: /etc/nginx/nginx.conf}}]
            healthcheck: {{test: {probe(8080, "/healthz")}, interval: 1s, timeout: 2s,
                          retries: 2}}
            restart: unless-stopped
        networks:
          platform: {{name: heliostat-{platform}, labels: {{io.heliostat.platform: {platform}}}}}
        configs:
          web-server: {{content: {content(SERVER)}}}
          gateway-conf: {{content: {content(NGINX)}}}
        """)}


class LoadLoop:
    """Requests through the gateway, back to back from a few threads, until stopped."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.answers: dict[str, int] = {}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + 600  # bounded, whatever happens to the test
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url, timeout=10) as answer:
                    body = answer.read().decode()
                with self._lock:
                    self.answers[body] = self.answers.get(body, 0) + 1
            except Exception as error:  # any: a cut-off answer is a lost request too
                with self._lock:
                    self.failures.append(repr(error))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def test_a_swap_behind_the_gateway_loses_no_request(platform_name: str, tmp_path: Path,
                                                     compose_engine: docker.DockerClient):
    port = free_port()
    driver = ComposeDriver(platform_name, tmp_path / platform_name, compose_engine)

    def apply(version: str, description: str):
        manifests = compose_file(platform_name, port, version)
        return Applier(driver).run(Change(description, manifests), description)

    assert apply("1", "install").status == "deployed"
    old = compose_engine.containers.get(f"{platform_name}-web-1").id
    load = LoadLoop(f"http://127.0.0.1:{port}/")
    try:
        time.sleep(2)
        outcome = apply("2", "upgrade")
        time.sleep(2)
    finally:
        load.stop()
    assert outcome.status == "deployed", outcome.failure
    assert compose_engine.containers.get(f"{platform_name}-web-1").id != old
    assert load.failures == [], (load.failures, load.answers)
    assert load.answers.get("1", 0) > 0 and load.answers.get("2", 0) > 0, load.answers
