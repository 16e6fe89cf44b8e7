"""`upgrade`, a failed upgrade's automatic rollback, and `rollback [REVISION]`, on the
real engine."""

import json
import urllib.request

import docker
import docker.errors

from tests.infra.compose_platforms import PlatformUnderTest


def container_id(client: docker.DockerClient, name: str) -> str:
    return client.containers.get(name).id


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def statuses(platform: PlatformUnderTest) -> list[tuple[int, str, str]]:
    history = json.loads(platform.run("history", "--output", "json").stdout)
    return [(r["revision"], r["status"], r["description"]) for r in history]


def test_an_upgrade_changes_only_the_service_that_changed_and_rolls_back_by_hand(
        test_platform: PlatformUnderTest, compose_engine: docker.DockerClient):
    platform = test_platform
    assert platform.run("install").returncode == 0
    registry = container_id(compose_engine, f"{platform.name}-registry-0")
    moved_port = platform.other_port
    moved = platform.write_config("moved.yaml", port=moved_port)

    upgraded = platform.run("upgrade", config=moved)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "replace gateway-1 (ports[0].published)" in upgraded.stderr
    assert answers(moved_port) and not answers(platform.port)
    assert container_id(compose_engine, f"{platform.name}-registry-0") == registry
    gateway = compose_engine.containers.get(f"{platform.name}-gateway-1")
    assert gateway.labels["io.heliostat.revision"] == "2"

    back = platform.run("rollback")  # to the revision deployed before: 1
    assert back.returncode == 0, back.stderr
    assert "revision 3 deployed" in back.stdout
    assert answers(platform.port) and not answers(moved_port)
    assert statuses(platform) == [(1, "superseded", "install"), (2, "superseded", "upgrade"),
                                  (3, "deployed", "rollback to 1")]
    forward = platform.run("rollback", "2")
    assert forward.returncode == 0, forward.stderr
    assert answers(moved_port)
    assert statuses(platform)[-1] == (4, "deployed", "rollback to 2")
    assert container_id(compose_engine, f"{platform.name}-registry-0") == registry

    unknown = platform.run("rollback", "9")
    assert unknown.returncode == 2 and "no revision 9 in the ledger" in unknown.stderr


def test_a_failed_upgrade_rolls_back_by_itself(test_platform: PlatformUnderTest,
                                                compose_engine: docker.DockerClient,
                                                broken_images: str):
    platform = test_platform
    assert platform.run("install").returncode == 0
    broken = platform.write_config("broken.yaml", registry=broken_images)

    failed = platform.run("upgrade", config=broken)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr
    assert "revision 2 failed: service gateway (gateway-1)" in failed.stderr
    assert "health check keeps failing" in failed.stderr
    # The report shows what the service said before it failed.
    assert "its last log lines:\n  | gateway: waiting for a config that never comes" \
        in failed.stderr
    assert "rolled back to revision 1" in failed.stderr
    assert answers(platform.port)
    for name in ("gateway-1", "registry-0"):
        container = compose_engine.containers.get(f"{platform.name}-{name}")
        assert not container.attrs["Config"]["Image"].startswith(broken_images)
        assert container.labels["io.heliostat.revision"] == "1"
    assert statuses(platform) == [(1, "deployed", "install"), (2, "rolled-back", "upgrade")]
    reason = json.loads(platform.run("history", "--output", "json").stdout)[1]["reason"]
    assert "service gateway (gateway-1)" in reason



def test_no_rollback_keeps_a_crashing_service_for_debugging(test_platform: PlatformUnderTest,
                                                           compose_engine: docker.DockerClient,
                                                           crashing_images: str):
    platform = test_platform
    assert platform.run("install").returncode == 0
    crashing = platform.write_config("crashing.yaml", registry=crashing_images)
    kept = platform.run("upgrade", "--no-rollback", config=crashing)
    assert kept.returncode == 1
    assert "service gateway (gateway-1): container" in kept.stderr
    assert "keeps crashing" in kept.stderr
    assert "  | gateway: cannot bind, giving up" in kept.stderr
    assert "left as it is (--no-rollback)" in kept.stderr
    gateway = compose_engine.containers.get(f"{platform.name}-gateway-1")
    assert gateway.attrs["Config"]["Image"].startswith(crashing_images)  # kept for debugging
    assert statuses(platform)[-1] == (2, "failed", "upgrade")
    repaired = platform.run("rollback", "1")
    assert repaired.returncode == 0, repaired.stderr
    assert answers(platform.port)
    assert statuses(platform) == [(1, "superseded", "install"), (2, "failed", "upgrade"),
                                  (3, "deployed", "rollback to 1")]
