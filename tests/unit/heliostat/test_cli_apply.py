"""The apply commands' answers to what a user can get wrong, before any target is touched."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def heliostat(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heliostat", *args], capture_output=True,
                          text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                          env={"PYTHONPATH": str(ROOT / "installer"), **(env or {})})


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "platform.yaml"
    path.write_text("apiVersion: heliostat/v1\nname: acme\n" + text)
    return str(path)


@pytest.mark.parametrize("verb", ["install", "upgrade", "diff", "status", "history"])
def test_only_compose_platforms_can_be_applied(tmp_path, verb):
    result = heliostat(verb, "-f", write(tmp_path, "profile: marathon\n"))
    assert result.returncode == 2
    assert "platform.yaml:3: profile: marathon platforms cannot be applied yet" in result.stderr


def test_an_unreachable_ssh_docker_host_is_one_line_saying_what_to_check(tmp_path):
    # Port 1 on loopback: refused at once, nothing to resolve.
    config = write(tmp_path, "target:\n  compose: {host: 'ssh://deploy@127.0.0.1:1'}\n")
    zipapp = tmp_path / "heliostat.pyz"
    zipapp.write_bytes(b"stands in for the zipapp")
    result = heliostat("install", "-f", config, env={"HELIOSTAT_ZIPAPP": str(zipapp)})
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: cannot reach 127.0.0.1:1 ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("verb", "exit_code"), [("install", 1), ("diff", 2)])
def test_an_unreachable_engine_is_a_message(tmp_path, verb, exit_code):
    # diff's 1 means "there are changes": it cannot tell, which is 2
    result = heliostat(verb, "-f", write(tmp_path, ""), "--state-dir", str(tmp_path),
                       env={"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert result.returncode == exit_code, result.stderr
    assert result.stderr.startswith("error: cannot reach the Docker engine")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("namespace", ["Acme", "acme_data", "-acme", "a" * 64])
def test_a_namespace_flag_kubernetes_would_refuse_is_a_usage_error(tmp_path, namespace):
    result = heliostat("diff", "-f", write(tmp_path, "profile: kubernetes\n"),
                       "--namespace", namespace)
    assert result.returncode == 2, result.stderr
    assert "is not a Kubernetes namespace name" in result.stderr
    assert "Traceback" not in result.stderr
