"""pytest fixtures for the real test bed (loaded from tests/conftest.py as a plugin).

`make testbed` (tests/infra/provision.sh) installs the components and builds the cached
artifacts; these fixtures start, per test session and only when a test asks for them:

- Postgres 15: a copy of the provisioned template cluster, own postmaster. `postgres.dsn` is
  the superuser DSN `postgresql://postgres:<password>@127.0.0.1:<port>/postgres`.
- Redis 7: own `redis-server`, no persistence, databases 1-15 rotate through `redis_url`.
- Kafka 3.9 (KRaft, one combined node): own JVM (-Xmx512m), data dir formatted per session.
- SSH hosts: containers of heliostat/testbed-sshd:bookworm, user root, key auth only, host
  keys from provisioning; `ssh_docker_host` has /var/run/docker.sock mounted.
- Registry: Debian's docker-registry, storage per session.
- Kubernetes: etcd, kube-apiserver (TLS, RBAC), controller manager, scheduler and kwok's
  simulated nodes (tests/infra/kubernetes_cluster.py), built from the Go module proxy.
- Browser: Debian's Chromium, headless, driven by Playwright (its own browser download
  is never used): `browser` is the launched browser, shared by the session.

Every port is a free loopback port picked at start (nothing fixed that could clash with a
developer's own servers or a parallel run); read it from the fixture. Everything started is
recorded under /tmp/heliostat-testbed/<owner>/ and labelled `heliostat.testbed.owner`; a reaper
process removes it if pytest dies, and the next session removes anything still left.

A component that cannot be provisioned or started makes its fixture fail with the reason;
nothing is skipped.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import docker
import pytest

from tests.infra import docker_engine
from tests.infra.container_faults import ContainerFaults
from tests.infra.http_sink import HttpSink
from tests.infra.kafka import KafkaBroker
from tests.infra.kubernetes_cluster import KubernetesCluster
from tests.infra.leftovers import remove_owned_docker_objects, sweep_abandoned_runs
from tests.infra.postgres import PostgresServer
from tests.infra.redis_server import RedisServer
from tests.infra.registry import Registry
from tests.infra.run_dir import RunDir
from tests.infra.settings import INFRA, NotProvisioned
from tests.infra.ssh_hosts import SshEndpoint, SshHostContainer, SshProxy
from tests.infra.tcp_proxy import TcpProxy

REPOSITORY = INFRA.parent.parent


T = TypeVar("T")


def _provisioned(make: Callable[[], T]) -> T:
    """`make()`, or a failed test naming the missing component (never a skip)."""
    try:
        return make()
    except NotProvisioned as error:
        message = str(error)
    pytest.fail(f"test bed: {message}", pytrace=False)


@pytest.fixture(scope="session")
def testbed_run() -> Iterator[RunDir]:
    """This session's run directory and owner labels; cleans up after dead sessions first."""
    sweep_abandoned_runs()
    run = RunDir()
    # Should pytest be killed, the reaper removes this session's processes and containers.
    subprocess.Popen(
        [sys.executable, "-m", "tests.infra.reaper", str(run.path)],
        cwd=REPOSITORY,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield run
    run.remove()


@pytest.fixture(scope="session")
def docker_client(testbed_run: RunDir) -> Iterator[docker.DockerClient]:
    client = _provisioned(docker_engine.connect)
    remove_owned_docker_objects(client, owner=None)
    yield client
    remove_owned_docker_objects(client, owner=testbed_run.token)
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> str:
    """`heliostat/base:bookworm` (debootstrap minbase + python3), present in the engine."""
    return _provisioned(lambda: docker_engine.require_image(docker_client, "BASE_IMAGE"))


@pytest.fixture(scope="session")
def postgres(testbed_run: RunDir) -> Iterator[PostgresServer]:
    """`.dsn`, `.stop()`, `.start()`, `.kill()`, `.dsn_for(database)`."""
    server = _provisioned(lambda: PostgresServer(testbed_run))
    _provisioned(server.start)
    yield server
    server.stop()


@pytest.fixture
def pg_database(postgres: PostgresServer) -> Iterator[str]:
    """DSN of a new, empty database for this test; dropped afterwards."""
    if not postgres.running:
        postgres.start()  # a previous test stopped it and did not start it again
    with postgres.fresh_database() as dsn:
        yield dsn


@pytest.fixture(scope="session")
def redis_server(testbed_run: RunDir) -> Iterator[RedisServer]:
    """`.url`, `.stop()`, `.start()`, `.kill()`."""
    server = _provisioned(lambda: RedisServer(testbed_run))
    _provisioned(server.start)
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of a flushed logical database for this test."""
    if not redis_server.running:
        redis_server.start()  # a previous test stopped it and did not start it again
    return redis_server.flushed_database_url()


@pytest.fixture(scope="session")
def kafka(testbed_run: RunDir) -> Iterator[KafkaBroker]:
    """`.bootstrap`, `.stop()`, `.kill()`, `.start()`, `.create_topic(name, partitions=1)`."""
    broker = _provisioned(lambda: KafkaBroker(testbed_run))
    _provisioned(broker.start)
    yield broker
    broker.kill()  # the data dir goes with the session, a clean shutdown buys nothing


@pytest.fixture
def kafka_topic_prefix(kafka: KafkaBroker, request: pytest.FixtureRequest) -> str:
    """A topic-name prefix unique to this test, e.g. `test_produce-3f9a1c2b.`"""
    if not kafka.running:
        kafka.start()  # a previous test stopped or killed it and did not start it again
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:80]
    return f"{name}-{uuid.uuid4().hex[:8]}."


def _ssh_host(
    docker_client: docker.DockerClient, run: RunDir, role: str, docker_socket: bool
) -> Iterator[SshEndpoint]:
    image = _provisioned(lambda: docker_engine.require_image(docker_client, "SSHD_IMAGE"))
    host = _provisioned(lambda: SshHostContainer(docker_client, run, image, role, docker_socket))
    yield host.endpoint
    host.remove()


@pytest.fixture(scope="session")
def ssh_host(docker_client: docker.DockerClient, testbed_run: RunDir) -> Iterator[SshEndpoint]:
    """`.host`, `.port`, `.user`, `.key_path`, `.known_hosts` (strict host-key checking)."""
    yield from _ssh_host(docker_client, testbed_run, "plain", docker_socket=False)


@pytest.fixture(scope="session")
def ssh_docker_host(
    docker_client: docker.DockerClient, testbed_run: RunDir
) -> Iterator[SshEndpoint]:
    """Same shape as `ssh_host`; `docker -H unix:///var/run/docker.sock` works there."""
    yield from _ssh_host(docker_client, testbed_run, "docker", docker_socket=True)


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], TcpProxy]]:
    """Factory: `tcp_proxy(host, port)` -> a loopback TcpProxy with `.port` and `.cut()`."""
    proxies: list[TcpProxy] = []

    def make(host: str, port: int) -> TcpProxy:
        proxies.append(TcpProxy(host, port))
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def ssh_proxy(
    ssh_host: SshEndpoint, tcp_proxy: Callable[[str, int], TcpProxy], testbed_run: RunDir
) -> SshProxy:
    """`ssh_host` reached through a proxy: same fields (its own port and known_hosts), and
    `.cut()` resets every connection through it, e.g. in the middle of an upload."""
    proxy = tcp_proxy(ssh_host.host, ssh_host.port)
    known_hosts = testbed_run.path / f"known_hosts.proxy-{proxy.port}"
    return SshProxy(ssh_host, proxy, known_hosts)


@pytest.fixture(scope="session")
def registry(testbed_run: RunDir) -> Iterator[Registry]:
    """`.url` ("127.0.0.1:PORT"); `with registry.with_notifications(url):` to get webhooks."""
    server = _provisioned(lambda: Registry(testbed_run))
    _provisioned(server.start)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kubernetes(testbed_run: RunDir) -> Iterator[KubernetesCluster]:
    """`.kubeconfig` (cluster admin), `.server`, `.kubectl(*args)`, `.kubeconfig_for(user)`,
    `.stop_apiserver()`, `.start_apiserver()`; storage class `kwok-volume`, three nodes."""
    cluster = _provisioned(lambda: KubernetesCluster(testbed_run))
    _provisioned(cluster.start)
    yield cluster
    cluster.stop()


@pytest.fixture
def webhook_sink() -> Iterator[HttpSink]:
    """An HTTP endpoint on loopback recording each request: `.url`, `.received`, `.events()`,
    `.wait_for()`, `.wait_until()`; the test sets `.status`/`.script` or `.stop()`s it."""
    sink = HttpSink()
    yield sink
    sink.stop()


@pytest.fixture
def container_faults(docker_client: docker.DockerClient) -> Iterator[ContainerFaults]:
    """`.pause(name)`, `.unpause(name)`, `.kill(name, signal)`, `.stop(name)`, `.start(name)`."""
    faults = ContainerFaults(docker_client)
    yield faults
    faults.restore()


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("browser tests need the `playwright` package of pyproject.toml's dev "
                    "dependencies: run `make venv` and use that virtualenv", pytrace=False)
    if not CHROMIUM.exists():
        pytest.fail(f"browser tests need Debian's Chromium at {CHROMIUM} (`make testbed` "
                    "installs it)", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
