"""Two applies at once, an installer killed with SIGKILL at several points, and
`uninstall` with and without --purge, on the real engine."""

import contextlib
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.infra.compose_platforms import PLATFORM_LABEL, PlatformUnderTest


def platform_containers(client: docker.DockerClient, name: str) -> list:
    """The platform's containers, also while an apply removes some of them."""
    found = []
    for summary in client.api.containers(all=True,
                                         filters={"label": f"{PLATFORM_LABEL}={name}"}):
        with contextlib.suppress(docker.errors.NotFound):
            found.append(client.containers.get(summary["Id"]))
    return found


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def revisions(platform: PlatformUnderTest) -> list[tuple[int, str]]:
    history = json.loads(platform.run("history", "--output", "json").stdout)
    return [(r["revision"], r["status"]) for r in history]


def all_healthy(platform: PlatformUnderTest) -> bool:
    rows = json.loads(platform.run("status", "--output", "json").stdout)["services"]
    return bool(rows) and all(r["health"] == "healthy" and r["ready"] == r["desired"]
                              for r in rows)


def test_a_second_apply_is_refused_naming_the_first(test_platform: PlatformUnderTest,
                                                    slow_images: str):
    platform = test_platform
    # The first install waits 10 s for its gateway: the second comes while it does.
    platform.write_config(registry=slow_images)
    first = platform.start("install")
    lease = platform.ledger / "lease.json"
    wait_until(lease.exists, "the first install to take the lock")
    second = platform.run("install")
    assert second.returncode == 1, second.stderr
    assert "another heliostat is changing this platform: `install` " \
           f"(pid {first.pid} on" in second.stderr
    assert "Traceback" not in second.stderr
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert not lease.exists()  # released at the end
    assert revisions(platform) == [(1, "deployed")]


def _revision_file(platform: PlatformUnderTest, number: int) -> Path:
    return platform.ledger / f"revision-{number:06d}.json"


KILL_POINTS = {
    # after the pending revision is recorded, maybe before any container exists
    "install-recorded": ("install", lambda p, c: _revision_file(p, 1).exists()),
    # while the wave's health gates run
    "install-gating": ("install", lambda p, c: len(platform_containers(c, p.name)) == 2),
    # after the upgrade's pending revision is recorded, before it changed anything
    "upgrade-recorded": ("upgrade", lambda p, c: _revision_file(p, 2).exists()),
    # an upgrade that replaces the gateway, killed once its new container exists
    "upgrade-replacing": ("upgrade", lambda p, c: any(
        x.labels.get("io.heliostat.revision") == "2" for x in platform_containers(c, p.name))),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_sigkill_mid_apply_then_the_next_command_converges(
        point: str, test_platform: PlatformUnderTest, compose_engine: docker.DockerClient):
    platform = test_platform
    verb, reached = KILL_POINTS[point]
    config = platform.config
    if verb == "upgrade":
        assert platform.run("install").returncode == 0
        config = platform.write_config("moved.yaml", port=platform.other_port)
    process = platform.start(verb, config=config)
    wait_until(lambda: reached(platform, compose_engine), f"{point} to be reached")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    number = 1 if verb == "install" else 2
    assert (number, "pending") in revisions(platform)
    status = platform.run("status", config=config)
    assert f"revision {number} ({verb}) was interrupted and is pending" in status.stdout

    # The same command again: the lock of the killed process is taken over at once,
    # the interrupted revision resumed, and nothing else is left to do.
    again = platform.run(verb, config=config)
    assert again.returncode == 0, again.stderr
    assert f"revision {number} ({verb}) was interrupted; resuming it" in again.stderr
    assert f"interrupted revision {number} ({verb}) was resumed: deployed" in again.stdout
    assert "nothing to do" in again.stdout
    assert revisions(platform)[-1] == (number, "deployed")
    assert all_healthy(platform)
    names = sorted(c.name for c in platform_containers(compose_engine, platform.name))
    assert names == [f"{platform.name}-gateway-1", f"{platform.name}-registry-0"]
    for container in platform_containers(compose_engine, platform.name):
        assert container.labels["io.heliostat.revision"] in ("1", str(number))
    diff = platform.run("diff", config=config)
    assert diff.returncode == 0, diff.stdout


def test_sigkill_of_a_failing_upgrade_then_the_next_command_rolls_back(
        test_platform: PlatformUnderTest, compose_engine: docker.DockerClient,
        broken_images: str):
    platform = test_platform
    assert platform.run("install").returncode == 0
    broken = platform.write_config("broken.yaml", registry=broken_images)
    process = platform.start("upgrade", config=broken)
    wait_until(lambda: any(c.labels.get("io.heliostat.revision") == "2"
                           for c in platform_containers(compose_engine, platform.name)),
               "the upgrade's new gateway")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert revisions(platform) == [(1, "deployed"), (2, "pending")]

    # The next command resumes the interrupted upgrade, whose new gateway never becomes
    # healthy: the revision is rolled back, and the platform is as it was before.
    again = platform.run("upgrade", config=broken)
    assert again.returncode == 1, again.stdout + again.stderr
    assert "Traceback" not in again.stderr
    assert "revision 2 (upgrade) was interrupted; resuming it" in again.stderr
    assert "health check keeps failing" in again.stderr
    assert "rolled back to revision 1" in again.stderr
    assert revisions(platform) == [(1, "deployed"), (2, "rolled-back")]
    assert all_healthy(platform)
    for container in platform_containers(compose_engine, platform.name):
        assert container.labels["io.heliostat.revision"] == "1"
        assert not container.attrs["Config"]["Image"].startswith(broken_images)
    assert platform.run("diff").returncode == 0


def test_uninstall_keeps_volumes_unless_purged(test_platform: PlatformUnderTest,
                                               compose_engine: docker.DockerClient):
    platform = test_platform
    assert platform.run("install").returncode == 0
    secret = (platform.ledger / "secrets" / "registry-http-secret").read_text()
    volume = f"{platform.name}_registry-0-data"
    label = {"label": f"{PLATFORM_LABEL}={platform.name}"}

    unasked = platform.run("uninstall")
    assert unasked.returncode == 2 and "pass --yes" in unasked.stderr
    assert len(platform_containers(compose_engine, platform.name)) == 2

    removed = platform.run("uninstall", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert platform_containers(compose_engine, platform.name) == []
    assert compose_engine.networks.list(filters=label) == []
    assert [v.name for v in compose_engine.volumes.list(filters=label)] == [volume]
    assert revisions(platform) == [(1, "superseded"), (2, "deployed")]

    reinstalled = platform.run("install")
    assert reinstalled.returncode == 0, reinstalled.stderr
    assert (platform.ledger / "secrets" / "registry-http-secret").read_text() == secret
    assert revisions(platform)[-1] == (3, "deployed")

    purged = platform.run("uninstall", "--purge", "--yes")
    assert purged.returncode == 0, purged.stderr
    assert platform_containers(compose_engine, platform.name) == []
    assert compose_engine.volumes.list(filters=label) == []
    assert not platform.ledger.exists()
    nothing = platform.run("uninstall", "--yes")
    assert nothing.returncode == 0 and "not installed" in nothing.stdout


def test_ctrl_c_mid_install_stops_and_the_next_install_resumes(
        test_platform: PlatformUnderTest, compose_engine: docker.DockerClient):
    platform = test_platform
    process = platform.start("install")
    # As soon as the pending revision is recorded: a file to look for is seen at once,
    # where the containers (listed through the engine) were seen once late, the small
    # platform already healthy and the install done.
    wait_until(lambda: _revision_file(platform, 1).exists(), "the pending revision")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted: a revision being applied stays pending" in stderr
    assert revisions(platform) == [(1, "pending")]

    again = platform.run("install")
    assert again.returncode == 0, again.stderr
    assert "interrupted revision 1 (install) was resumed: deployed" in again.stdout
    assert revisions(platform) == [(1, "deployed")]
    assert all_healthy(platform)
