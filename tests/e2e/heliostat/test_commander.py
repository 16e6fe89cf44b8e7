"""Commander in its container on the real engine: image updates and rollbacks through the
ledger, health-gated; a real push to the platform's own registry, which notifies
Commander, rolled out as a revision; the webhook's errors and duplicates; a CLI command
and Commander at once; Commander killed mid-rollout, and replaced by an upgrade. (Its
rollout of a pushed Airflow image runs in test_compose_airflow.py, on that platform.)

Commander is not published on the host (nor routed by the gateway): it is reached as the
registry and Pilot reach it, at its address on the platform's network. So is the
platform's registry, through a loopback proxy (the engine pushes to 127.0.0.0/8 over
plain HTTP without configuration)."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import signal
import textwrap
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import openapi
from schemathesis.generation import GenerationMode

from heliostat.ledger import Ledger, Revision
from heliostat.ledger_store import FileLedgerStore
from tests.e2e.heliostat.commander_client import Commander, address_of, brief, history
from tests.infra.compose_platforms import PlatformUnderTest, container_of, wait_for

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def with_commander(text: str) -> str:
    """The small test platform, with Commander: pushes of `gateway` roll the gateway."""
    changed = text.replace(
        "  commander: {enabled: false}\n",
        "  commander:\n"
        "    auto_update: true\n"
        "    repositories: [{repository: gateway, services: [gateway], tags: 'e2e-.*'}]\n")
    assert "auto_update" in changed
    return changed


def pinned_config(platform: PlatformUnderTest, file: str, pins: dict[str, str]) -> Path:
    """platform.yaml with `images.services` pins, as an operator would write them."""
    path = platform.directory / file
    path.write_text(platform.config.read_text().replace(
        'images: {registry: ""}', f"images: {{registry: \"\", services: {json.dumps(pins)}}}"))
    assert "services" in path.read_text()
    return path


def ledger_of(platform: PlatformUnderTest) -> Ledger:
    return Ledger(FileLedgerStore(platform.ledger))


def pending(platform: PlatformUnderTest) -> Revision | None:
    return ledger_of(platform).pending()


def push(engine: docker.DockerClient, source: str, repository: str, tag: str) -> str:
    """Push image `source` as `repository:tag`; its manifest's digest."""
    engine.images.get(source).tag(repository, tag)
    for line in engine.images.push(repository, tag, stream=True, decode=True):
        assert "error" not in line, line
    digests = engine.images.get(f"{repository}:{tag}").attrs["RepoDigests"]
    return next(d for d in digests if d.startswith(repository + "@")).rpartition("@")[2]


@pytest.fixture
def commander(test_platform: PlatformUnderTest,
              compose_engine: docker.DockerClient) -> Commander:
    platform = test_platform
    platform.config.write_text(with_commander(platform.config.read_text()))
    installed = platform.run("install")
    assert installed.returncode == 0, installed.stdout + installed.stderr

    def secret(name: str) -> str:
        shown = platform.run("status", "--show-secret", name)
        assert shown.returncode == 0, shown.stderr
        return shown.stdout.strip()

    found = Commander(platform, compose_engine, secret("commander-token"),
                      secret("commander-webhook-secret"))
    wait_for("Commander to answer", lambda: found.call("GET", "/health")[0] == 200, 60)
    return found


@dataclass(frozen=True)
class GatewayTags:
    good: str  # the gateway's image under another tag
    other: str  # and under a third
    broken: str  # one that never becomes healthy: its process never listens
    slow: str  # one that starts nginx only after 10s, so that its apply takes a while


def slow_to_start(engine: docker.DockerClient, image: str, suffix: str) -> str:
    """A tag of `image` whose entrypoint waits 10 s before starting it; returns the tag."""
    repository = image.rsplit(":", 1)[0]
    tag = f"e2e-slow-{suffix}"
    command = engine.images.get(image).attrs["Config"]["Cmd"]  # a new entrypoint drops it
    base = engine.containers.create(image, entrypoint=["true"])
    try:
        base.commit(repository, tag, changes=[
            'ENTRYPOINT ["/bin/sh", "-c", "sleep 10; exec /usr/bin/tini -- '
            '/usr/local/bin/heliostat-entrypoint \\"$@\\"", "slow"]',
            f"CMD {json.dumps(command)}"])
    finally:
        base.remove(force=True)
    return tag


@pytest.fixture
def gateway_images(compose_engine: docker.DockerClient) -> Iterator[GatewayTags]:
    suffix = os.getpid()
    tags = GatewayTags(f"e2e-{suffix}", f"e2e-other-{suffix}", f"e2e-broken-{suffix}",
                       slow_to_start(compose_engine, "heliostat/gateway:0.1.0", str(suffix)))
    for tag in (tags.good, tags.other):
        compose_engine.images.get("heliostat/gateway:0.1.0").tag("heliostat/gateway", tag)
    base = compose_engine.containers.create("heliostat/gateway:0.1.0", entrypoint=["true"])
    try:
        base.commit("heliostat/gateway", tags.broken,
                    changes='ENTRYPOINT ["/bin/sh", "-c", "exec sleep infinity"]')
    finally:
        base.remove(force=True)
    yield tags
    for tag in (tags.good, tags.other, tags.broken, tags.slow):
        with contextlib.suppress(docker.errors.ImageNotFound):
            compose_engine.images.remove(f"heliostat/gateway:{tag}", force=True)


def test_image_updates_health_gated_through_the_ledger(
        commander: Commander, gateway_images: GatewayTags,
        compose_engine: docker.DockerClient):
    platform = commander.platform
    good, bad = gateway_images.good, gateway_images.broken

    # Bad input: clear 4xx JSON errors.
    assert commander.call("GET", "/api/v1/status", token="")[0] == 401
    assert commander.call("GET", "/api/v1/status", token="wrong")[0] == 401
    assert commander.call("POST", "/api/v1/services/gateway/image", raw=b"{")[0] == 400
    status, error = commander.call("POST", "/api/v1/services/nope/image", {"image": good})
    assert status == 404 and "no service or group nope" in error["error"]

    status, accepted = commander.call("POST", "/api/v1/services/gateway/image",
                                      {"image": good})
    assert status == 202, accepted
    done = commander.wait(accepted["operation"])
    assert (done["state"], done["revision"]) == ("deployed", 2), brief(done)
    assert f"revision 2 (commander: image gateway:{good})" in done["events"][0]
    revisions = history(platform)
    assert (revisions[-1]["origin"], revisions[-1]["status"], revisions[-1]["description"]) \
        == ("commander", "deployed", f"commander: image gateway:{good}")
    gateway = container_of(compose_engine, platform, "gateway")
    assert gateway.attrs["Config"]["Image"] == f"heliostat/gateway:{good}"
    # What it applied is what `render` renders from the revision's config.
    status, release = commander.call("GET", "/api/v1/releases/2")
    assert release["config"]["images"]["services"] == {"gateway": good}
    assert f"image: heliostat/gateway:{good}" in release["manifests"]["compose.yaml"]
    assert all(value.startswith("sha256:") for value in release["secrets"].values())
    assert commander.token not in json.dumps(release)
    status, diff = commander.call("GET", "/api/v1/releases/1/diff/2")
    assert {"path": "images.services.gateway", "from": None, "to": good} in diff["config"]

    # The event stream of a finished operation replays its progress and ends.
    request = urllib.request.Request(
        commander.url + f"/api/v1/operations/{accepted['operation']}/events",
        headers={"Authorization": f"Bearer {commander.token}"})
    with urllib.request.urlopen(request, timeout=30) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        text = stream.read().decode()
    assert "event: progress" in text and "revision 2 deployed" in text
    assert "event: end" in text

    status, status_view = commander.call("GET", "/api/v1/status")
    rows = {row["service"]: row for row in status_view["services"]}
    assert (rows["gateway"]["ready"], rows["gateway"]["desired"]) == (1, 1)
    assert rows["gateway"]["health"] == "healthy"
    assert rows["gateway"]["image"] == f"heliostat/gateway:{good}"
    assert rows["gateway"]["module"] == "core"
    assert status_view["revision"]["number"] == 2
    assert set(status_view["modules"]) >= {"core", "commander"}

    # An image whose health check fails: rolled back, and the audit says why.
    status, accepted = commander.call("POST", "/api/v1/services/gateway/image",
                                      {"image": bad})
    assert status == 202
    failed = commander.wait(accepted["operation"], timeout=300)
    assert failed["state"] == "rolled-back", brief(failed)
    assert failed["rolled_back_to"] == 2
    assert "service gateway (gateway-1)" in failed["reason"]
    assert history(platform)[-1]["status"] == "rolled-back"
    gateway = container_of(compose_engine, platform, "gateway")
    assert gateway.attrs["Config"]["Image"] == f"heliostat/gateway:{good}"
    finished = [e for e in commander.audit() if e["operation"] == accepted["operation"]]
    assert [e["outcome"] for e in finished] == ["accepted", "rolled-back"]
    assert "service gateway (gateway-1)" in finished[-1]["detail"]

    # Rollback to the install.
    status, accepted = commander.call("POST", "/api/v1/rollback", {"revision": 1})
    assert status == 202
    back = commander.wait(accepted["operation"])
    assert back["state"] == "deployed", brief(back)
    assert history(platform)[-1]["description"] == "commander: rollback to 1"
    gateway = container_of(compose_engine, platform, "gateway")
    assert gateway.attrs["Config"]["Image"] == "heliostat/gateway:0.1.0"

    # Metrics count what happened; logs are JSON lines.
    with urllib.request.urlopen(commander.url + "/metrics", timeout=30) as answer:
        metrics = answer.read().decode()
    assert 'commander_operations_total{kind="image",state="rolled-back"} 1.0' in metrics
    logs = container_of(compose_engine, platform, "commander").logs().decode().splitlines()
    assert logs and all(json.loads(line)["level"] for line in logs if line.strip())


def test_the_audit_log_survives_a_restart(commander: Commander,
                                          compose_engine: docker.DockerClient):
    assert commander.call("POST", "/api/v1/rollback", {"revision": 1}, token="no")[0] == 401
    before = commander.audit()
    assert before[-1]["outcome"] == "refused"
    # From where: this test's address on the platform's network, as Commander saw it.
    assert ipaddress.ip_address(before[-1]["remote"]).is_private, before[-1]
    container_of(compose_engine, commander.platform, "commander").restart(timeout=20)
    commander.refresh()
    wait_for("Commander to answer", lambda: commander.call("GET", "/health")[0] == 200, 60)
    assert commander.audit()[:len(before)] == before


def test_a_push_to_the_platform_registry_rolls_out(
        commander: Commander, gateway_images: GatewayTags, tcp_proxy: Any,
        compose_engine: docker.DockerClient):
    """The registry itself notifies Commander (with the webhook secret it was given at
    install): nothing in this test calls the webhook."""
    platform = commander.platform
    good, bad = gateway_images.good, gateway_images.broken
    proxy = tcp_proxy(address_of(compose_engine, platform, "registry"), 5000)
    registry = f"127.0.0.1:{proxy.port}"
    pushed: list[str] = []
    try:
        digest = push(compose_engine, f"heliostat/gateway:{good}", f"{registry}/gateway", good)
        pushed.append(f"{registry}/gateway:{good}")
        description = f"commander: registry push gateway@{digest}"
        operation = wait_for("the push's operation", lambda: next(
            (op for op in commander.operations() if op["description"] == description), None),
            timeout=60)
        assert operation["kind"] == "registry" and operation["who"] == "registry"
        done = commander.wait(operation["id"])
        assert done["state"] == "deployed", brief(done)
        revisions = history(platform)
        assert (revisions[-1]["description"], revisions[-1]["origin"],
                revisions[-1]["status"]) == (description, "commander", "deployed")
        gateway = container_of(compose_engine, platform, "gateway")
        assert gateway.attrs["Config"]["Image"] == f"{registry}/gateway@{digest}"
        accepted = next(e for e in commander.audit() if e["operation"] == operation["id"])
        assert (accepted["who"], accepted["action"], accepted["outcome"]) == (
            "registry", "registry push", "accepted")
        assert accepted["target"] == f"push gateway:{good}@{digest}"

        # A repository nobody mapped, and a tag the pattern does not take: ignored, audited.
        push(compose_engine, f"heliostat/gateway:{good}", f"{registry}/elsewhere", good)
        pushed.append(f"{registry}/elsewhere:{good}")
        push(compose_engine, f"heliostat/gateway:{good}", f"{registry}/gateway", "latest")
        pushed.append(f"{registry}/gateway:latest")

        def ignored(reason: str) -> bool:
            return any(e["outcome"] == "ignored" and e["detail"].startswith(reason)
                       for e in commander.audit())

        wait_for("the unknown repository in the audit",
                 lambda: ignored("repository elsewhere is not mapped"), 60)
        wait_for("the other tag in the audit",
                 lambda: ignored("tag latest does not match the pattern 'e2e-.*'"), 60)
        assert len(history(platform)) == len(revisions)

        # A pushed image whose health check fails: rolled back, the audit says why.
        broken = push(compose_engine, f"heliostat/gateway:{bad}", f"{registry}/gateway", bad)
        pushed.append(f"{registry}/gateway:{bad}")
        operation = wait_for("the broken push's operation", lambda: next(
            (op for op in commander.operations()
             if op["description"] == f"commander: registry push gateway@{broken}"), None),
            timeout=60)
        failed = commander.wait(operation["id"], timeout=300)
        assert failed["state"] == "rolled-back", brief(failed)
        assert failed["rolled_back_to"] == len(revisions)
        audited = [e for e in commander.audit() if e["operation"] == operation["id"]]
        assert [e["outcome"] for e in audited] == ["accepted", "rolled-back"]
        assert audited[-1]["detail"].startswith("service gateway (gateway-1): ")
        gateway = container_of(compose_engine, platform, "gateway")
        assert gateway.attrs["Config"]["Image"] == f"{registry}/gateway@{digest}"
        assert history(platform)[-1]["status"] == "rolled-back"
    finally:
        for reference in pushed:
            with contextlib.suppress(docker.errors.ImageNotFound):
                compose_engine.images.remove(reference, force=True)


def test_webhook_errors_and_a_hundred_duplicates(commander: Commander, registry: Any,
                                                 compose_engine: docker.DockerClient):
    """Notifications sent by hand, of an image in another registry (the test bed's, which
    notifies nobody): the secret, the envelope, and 100 copies of one push at once."""
    platform = commander.platform
    tag = f"e2e-dup-{os.getpid()}"
    repository = f"{registry.url}/gateway"
    digest = push(compose_engine, "heliostat/gateway:0.1.0", repository, tag)
    try:
        def event(repository: str = "gateway", action: str = "push") -> dict[str, Any]:
            return {"id": "e", "action": action,
                    "target": {"mediaType": MANIFEST, "repository": repository, "tag": tag,
                               "digest": digest},
                    "request": {"host": registry.url, "method": "PUT"}}

        assert commander.notify(event(), secret="wrong")[0] == 401
        assert commander.notify(event(), secret="")[0] == 401
        assert commander.audit()[-1]["outcome"] == "refused"
        status, answer = commander.notify(event(repository="unknown"), event(action="pull"))
        assert status == 202
        assert [e["result"] for e in answer["events"]] == ["ignored", "ignored"]
        assert "repository unknown is not mapped" in commander.audit()[-2]["detail"]
        for raw in (b"[1]", b"{", b'{"events": [{"action": "push"}]}'):
            status, malformed = commander.call(
                "POST", "/webhooks/registry", raw=raw, token="",
                headers={"X-Heliostat-Webhook-Secret": commander.webhook_secret})
            assert status == 400, malformed
            assert malformed["error"].startswith("not a registry notification envelope")

        before = len(history(platform))
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(lambda _: commander.notify(event()), range(100)))
        assert {status for status, _ in results} == {202}
        queued = [a["events"][0]["operation"] for _, a in results
                  if a["events"][0]["result"] == "queued"]
        assert len(queued) == 1
        done = commander.wait(queued[0])
        assert done["state"] == "deployed", brief(done)
        revisions = history(platform)
        assert len(revisions) == before + 1
        assert revisions[-1]["description"] == f"commander: registry push gateway@{digest}"
        gateway = container_of(compose_engine, platform, "gateway")
        assert gateway.attrs["Config"]["Image"] == f"{repository}@{digest}"
        # After it ran, the same digest again still makes no revision.
        assert commander.notify(event())[1]["events"][0]["result"] == "ignored"
        assert len(history(platform)) == before + 1
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            compose_engine.images.remove(f"{repository}:{tag}", force=True)


def fuzz(commander: Commander, operation: Any, mode: GenerationMode,
         seen: dict[int, int]) -> None:
    hook = operation.path == "/webhooks/registry"
    headers = ({"X-Heliostat-Webhook-Secret": commander.webhook_secret} if hook
               else {"Authorization": f"Bearer {commander.token}"})

    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(base_url=commander.url, headers=headers, timeout=60)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: "
            f"{response.text[:300]}")

    with contextlib.suppress(Unsatisfiable):  # no parameters or body to make invalid
        check()


def test_schemathesis_finds_no_server_error(commander: Commander):
    """Property-based requests against the running Commander's own /openapi.json. Valid
    change requests would change the platform, so those are sent only as invalid ones."""
    schema = openapi.from_url(commander.url + "/openapi.json")
    seen: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE or operation.method.upper() != "POST":
                fuzz(commander, operation, mode, seen)
    assert seen.get(200) and seen.get(400), seen
    # The invalid change requests changed nothing.
    assert [r["revision"] for r in history(commander.platform)] == [1]


def test_a_cli_upgrade_and_a_commander_rollout_wait_for_each_other(
        commander: Commander, gateway_images: GatewayTags):
    platform = commander.platform
    slow, other, bad = gateway_images.slow, gateway_images.other, gateway_images.broken
    upgraded = pinned_config(platform, "upgraded.yaml", {"gateway": slow})

    # The CLI first: Commander's operation waits for its lock, then applies on top.
    cli = platform.start("upgrade", config=upgraded)
    wait_for("the CLI's pending revision", lambda: (p := pending(platform)) and p.origin == "cli")
    status, accepted = commander.call("POST", "/api/v1/services/gateway/image", {"image": other})
    assert status == 202
    waiting = wait_for("the operation to wait", lambda: (
        op := commander.operation(accepted["operation"]))["state"] == "waiting" and op, 60)
    assert waiting["events"][0].startswith("waiting: `upgrade` (pid ")
    out, err = cli.communicate(timeout=300)
    assert cli.returncode == 0, out + err
    done = commander.wait(accepted["operation"])
    assert (done["state"], done["revision"]) == ("deployed", 3), brief(done)
    assert [(r["revision"], r["origin"], r["status"]) for r in history(platform)] == [
        (1, "cli", "superseded"), (2, "cli", "superseded"), (3, "commander", "deployed")]
    assert ledger_of(platform).revision(3).config["images"]["services"] == {"gateway": other}

    # Commander first: the CLI is refused while Commander holds the lock, saying who does.
    status, accepted = commander.call("POST", "/api/v1/services/gateway/image", {"image": bad})
    assert status == 202
    wait_for("Commander's pending revision",
             lambda: (p := pending(platform)) and p.origin == "commander")
    refused = platform.run("upgrade", config=upgraded)
    assert refused.returncode != 0
    assert ("another heliostat is changing this platform: "
            f"`commander: image gateway:{bad}`") in refused.stderr
    assert commander.wait(accepted["operation"], timeout=300)["state"] == "rolled-back"
    again = platform.run("upgrade", config=upgraded)
    assert again.returncode == 0, again.stdout + again.stderr
    statuses = [(r["origin"], r["status"]) for r in history(platform)]
    assert statuses == [("cli", "superseded"), ("cli", "superseded"),
                        ("commander", "superseded"), ("commander", "rolled-back"),
                        ("cli", "deployed")]
    assert pending(platform) is None


def test_commander_killed_mid_rollout_resumes_it(
        commander: Commander, gateway_images: GatewayTags,
        compose_engine: docker.DockerClient):
    platform = commander.platform
    slow = gateway_images.slow
    status, accepted = commander.call("POST", "/api/v1/services/gateway/image", {"image": slow})
    assert status == 202
    wait_for("Commander's pending revision",
             lambda: (p := pending(platform)) and p.origin == "commander", every=0.1)
    killed = container_of(compose_engine, platform, "commander")
    os.kill(killed.attrs["State"]["Pid"], signal.SIGKILL)  # its tini: the whole container
    # The engine restarts it (restart: unless-stopped); it finds its operation unfinished
    # and the revision pending, waits out the dead process's lease, and resumes.

    def restarted() -> bool:
        again = compose_engine.containers.get(killed.id)
        if again.attrs["RestartCount"] < 1 or again.status != "running":
            return False
        commander.refresh()
        return commander.call("GET", "/health")[0] == 200

    wait_for("the restarted Commander", restarted, 120)
    done = commander.wait(accepted["operation"], timeout=300)
    assert (done["state"], done["revision"]) == ("deployed", 2), brief(done)
    assert "Commander restarted; queued again" in done["events"]
    assert any("was interrupted; resuming it" in line for line in done["events"])
    assert [(r["revision"], r["status"]) for r in history(platform)] == [
        (1, "superseded"), (2, "deployed")]
    gateway = container_of(compose_engine, platform, "gateway")
    assert gateway.attrs["Config"]["Image"] == f"heliostat/gateway:{slow}"
    outcomes = [e["outcome"] for e in commander.audit() if e["operation"] == accepted["operation"]]
    assert outcomes == ["accepted", "deployed"]


def test_an_upgrade_of_commander_keeps_its_queued_operation(
        commander: Commander, gateway_images: GatewayTags,
        compose_engine: docker.DockerClient):
    platform = commander.platform
    other = gateway_images.other
    tag = f"e2e-{os.getpid()}"
    compose_engine.images.get("heliostat/commander:0.1.0").tag("heliostat/commander", tag)
    slow_registry = slow_to_start(compose_engine, "heliostat/registry:0.1.0", str(os.getpid()))
    try:
        old = container_of(compose_engine, platform, "commander")
        # A new Commander image, and the registry it depends on slow to start: the CLI
        # replaces Commander only once the registry is healthy, 10 s later.
        upgraded = pinned_config(platform, "upgraded.yaml",
                                 {"registry": slow_registry, "commander": tag})
        cli = platform.start("upgrade", config=upgraded)
        wait_for("the CLI's pending revision",
                 lambda: (p := pending(platform)) and p.origin == "cli")
        status, accepted = commander.call("POST", "/api/v1/services/gateway/image",
                                          {"image": other})
        assert status == 202
        out, err = cli.communicate(timeout=300)
        assert cli.returncode == 0, out + err
        new = container_of(compose_engine, platform, "commander")
        assert new.id != old.id and new.attrs["Config"]["Image"] == f"heliostat/commander:{tag}"
        commander.refresh()
        done = commander.wait(accepted["operation"])
        assert (done["state"], done["revision"]) == ("deployed", 3), brief(done)
        assert "Commander restarted; queued again" in done["events"]
        assert ledger_of(platform).revision(3).config["images"]["services"] == {
            "registry": slow_registry, "gateway": other, "commander": tag}
    finally:
        for image in (f"heliostat/commander:{tag}", f"heliostat/registry:{slow_registry}"):
            with contextlib.suppress(docker.errors.APIError):
                compose_engine.images.remove(image)


class LoadLoop:
    """Events sent through the gateway without a pause, from a few threads, each answer
    counted; anything but a 200 (an error status, a connection error) is a failure."""

    def __init__(self, url: str, write_key: str, threads: int = 3) -> None:
        self.url = url
        self.authorization = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
        self.answers: dict[int, int] = {}
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                         for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self, number: int) -> None:
        sent = 0
        while not self._stop.is_set():
            sent += 1
            body = json.dumps({"userId": f"load-{number}", "event": "Load",
                               "messageId": f"load-{number}-{sent}-{uuid.uuid4().hex}"})
            request = urllib.request.Request(self.url, data=body.encode(), method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "Authorization": self.authorization})
            said = b""
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status = answer.status
            except urllib.error.HTTPError as error:
                status, said = error.code, error.read()[:200]
            except OSError as error:
                with self._lock:
                    self.failures.append(f"{time.strftime('%X')} {error}")
                continue
            with self._lock:
                self.answers[status] = self.answers.get(status, 0) + 1
                if status != 200:
                    self.failures.append(f"{time.strftime('%X')} HTTP {status}: {said!r}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


@pytest.fixture
def clickstream_platform(test_platform: PlatformUnderTest,
                         compose_engine: docker.DockerClient) -> Commander:
    """The Event API with its stores (Postgres, Redis, Kafka: the platform's own), and
    Commander rolling pushes of `clickstream` out to the Event API."""
    platform = test_platform
    platform.config.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {platform.name}
        profile: compose
        gateway: {{http_port: {platform.port}}}
        modules:
          pilot: {{enabled: false}}
          monitoring: {{enabled: false}}
          clickstream:
            workers: {{webhook: {{enabled: false}}, warehouse: {{enabled: false}},
                      redis: {{enabled: false}}}}
          commander:
            auto_update: true
            repositories: [{{repository: clickstream, services: [event-api], tags: 'e2e-.*'}}]
        """))
    installed = platform.run("install", timeout=900)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    def secret(name: str) -> str:
        return platform.run("status", "--show-secret", name).stdout.strip()

    return Commander(platform, compose_engine, secret("commander-token"),
                     secret("commander-webhook-secret"))


def test_an_event_api_image_pushed_under_load_loses_no_request(
        clickstream_platform: Commander, tcp_proxy: Any, compose_engine: docker.DockerClient):
    commander = clickstream_platform
    platform = commander.platform
    api = compose_engine.containers.list(filters={"label": [
        f"io.heliostat.platform={platform.name}", "io.heliostat.service=event-api"]})
    assert len(api) == 2
    created = api[0].exec_run(["python3", "-m", "clickstream", "admin", "app", "create",
                               "load", "--output", "json"])
    assert created.exit_code == 0, created.output.decode()
    write_key = json.loads(created.output.decode().strip().splitlines()[-1])["write_key"]
    proxy = tcp_proxy(address_of(compose_engine, platform, "registry"), 5000)
    repository = f"127.0.0.1:{proxy.port}/clickstream"
    tag = f"e2e-{os.getpid()}"
    load = LoadLoop(f"http://127.0.0.1:{platform.port}/v1/track", write_key)
    try:
        wait_for("events to be accepted", lambda: load.answers.get(200, 0) >= 20, 60)
        digest = push(compose_engine, "heliostat/clickstream:0.1.0", repository, tag)
        description = f"commander: registry push clickstream@{digest}"
        operation = wait_for("the push's operation", lambda: next(
            (op for op in commander.operations() if op["description"] == description), None),
            timeout=60)
        done = commander.wait(operation["id"], timeout=600)
        time.sleep(3)  # and a little after it
    finally:
        load.stop()
        with contextlib.suppress(docker.errors.ImageNotFound):
            compose_engine.images.remove(f"{repository}:{tag}", force=True)
    assert done["state"] == "deployed", brief(done)
    upstream = [line for line in container_of(compose_engine, platform, "gateway").logs(
        stdout=False).decode(errors="replace").splitlines() if "upstream" in line]
    assert load.failures == [], (load.failures[:20], load.answers, upstream[-10:])
    assert load.answers[200] > 100, load.answers
    api = compose_engine.containers.list(filters={"label": [
        f"io.heliostat.platform={platform.name}", "io.heliostat.service=event-api"]})
    assert [c.attrs["Config"]["Image"] for c in api] == [f"{repository}@{digest}"] * 2
    assert history(platform)[-1]["description"] == description
