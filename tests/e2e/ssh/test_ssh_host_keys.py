"""Host keys over SSH: unknown or changed keys refused with their fingerprint before
anything is uploaded, then accepted with --accept-host-key."""

from __future__ import annotations

import base64
import hashlib
import uuid

from tests.e2e.ssh.conftest import Installed
from tests.infra.ssh_hosts import known_hosts_line


def fingerprint_of(public_key: str) -> str:
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def staged_name_of(path, platform: str) -> str:
    return f"{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}-{platform}.platform.yaml"


def test_a_changed_target_key_is_refused_then_accepted(installed: Installed):
    platform, airgap = installed.platform, installed.platform.airgap
    # The target recorded with another host's key: what a man in the middle would show.
    known = airgap.known_hosts(platform.directory / f"known_hosts-{uuid.uuid4().hex}",
                               airgap.jump_port, target_key=airgap.host_keys["plain"])
    config = platform.config(airgap.jump_port, "changed-key.yaml", known_hosts=known)
    before = airgap.staged_files()

    refused = installed.workstation.run("status", "-f", str(config))
    target_print = fingerprint_of(airgap.host_keys["docker"])
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].startswith("error: the host key of airgapped:22 has "
                                                      "CHANGED")
    assert f"--accept-host-key {target_print}" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert airgap.staged_files() == before  # nothing was uploaded

    accepted = installed.workstation.run("status", "-f", str(config),
                                         "--accept-host-key", target_print)
    assert accepted.returncode == 0, accepted.stderr
    assert f"platform {platform.name}: revision" in accepted.stdout
    assert staged_name_of(config, platform.name) in airgap.staged_files()


def test_an_unknown_jump_host_key_is_refused_with_its_fingerprint(installed: Installed):
    platform, airgap = installed.platform, installed.platform.airgap
    known = platform.directory / f"known_hosts-{uuid.uuid4().hex}"
    known.write_text(known_hosts_line("airgapped", 22, airgap.host_keys["docker"]))
    config = platform.config(airgap.jump_port, "unknown-jump.yaml", known_hosts=known)

    refused = installed.workstation.run("history", "-f", str(config))
    jump_print = fingerprint_of(airgap.host_keys["plain"])
    assert refused.returncode == 1
    assert f"127.0.0.1:{airgap.jump_port} is unknown" in refused.stderr
    assert f"--accept-host-key {jump_print}" in refused.stderr
    assert staged_name_of(config, platform.name) not in airgap.staged_files()

    other_print = fingerprint_of(airgap.host_keys["docker"])
    wrong = installed.workstation.run("history", "-f", str(config),
                                      "--accept-host-key", other_print)
    assert wrong.returncode == 1 and "is unknown" in wrong.stderr

    accepted = installed.workstation.run("history", "-f", str(config),
                                         "--accept-host-key", jump_print)
    assert accepted.returncode == 0, accepted.stderr
