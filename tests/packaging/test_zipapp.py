"""dist/heliostat.pyz runs on a bare CPython: no site-packages, no pip, no network.

`make test` builds the zipapp before running this; `make zipapp` builds it alone.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ZIPAPP = ROOT / "dist" / "heliostat.pyz"
# Interpreters this machine has; each runs the zipapp isolated (-I) and without site (-S).
CANDIDATES = ["/usr/bin/python3", *sorted(str(p) for p in Path("/root/.pyenv/versions").glob(
    "3.1[0-9]*/bin/python3"))] if Path("/root/.pyenv/versions").exists() else ["/usr/bin/python3"]
INTERPRETERS = [p for p in dict.fromkeys([sys.executable, *CANDIDATES]) if Path(p).exists()]


@pytest.fixture(scope="module")
def zipapp() -> Path:
    if not ZIPAPP.exists():
        pytest.fail("dist/heliostat.pyz is missing: run `make zipapp` (make test does)")
    return ZIPAPP


def bare(python: str, *args: str, cache: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(cache), "HELIOSTAT_CACHE": str(cache)}
    return subprocess.run([python, "-I", "-S", str(ZIPAPP), *args], capture_output=True,
                          text=True, cwd=cwd, env=environment, timeout=120)


@pytest.mark.parametrize("python", INTERPRETERS)
def test_runs_on_a_bare_interpreter(python: str, zipapp: Path, tmp_path: Path):
    # The interpreter alone really cannot import what heliostat needs...
    alone = subprocess.run([python, "-I", "-S", "-c", "import yaml"], capture_output=True)
    assert alone.returncode != 0
    # ...but the zipapp brings it, compiled parts (SSH crypto, libyaml) included.
    version = bare(python, "version", "--output", "json", cache=tmp_path)
    assert version.returncode == 0, version.stderr
    components = json.loads(version.stdout)["components"]
    assert components["paramiko"] and components["zstandard"] and components["docker"]
    validate = bare(python, "validate", "-f", "examples/compose.yaml", cache=tmp_path)
    assert validate.returncode == 0, validate.stderr
    out = tmp_path / "out"
    render = bare(python, "render", "-f", "examples/kubernetes.yaml", "-o", str(out),
                  cache=tmp_path)
    assert render.returncode == 0, render.stderr
    assert yaml.safe_load((out / "statefulset-kafka.yaml").read_text())["kind"] == "StatefulSet"
    # The kubernetes driver and its client load too: they get as far as the kubeconfig.
    diff = bare(python, "diff", "-f", "examples/kubernetes.yaml", "--kubeconfig",
                str(tmp_path / "no-kubeconfig"), cache=tmp_path)
    assert diff.returncode == 2  # it cannot tell whether anything changed
    assert diff.stderr == f"error: no kubeconfig at {tmp_path / 'no-kubeconfig'}: set " \
        "target.kubernetes.kubeconfig, --kubeconfig or KUBECONFIG to the file kubectl uses " \
        "for this cluster\n"


def test_invalid_config_exits_2_with_the_line(zipapp: Path, tmp_path: Path):
    config = tmp_path / "platform.yaml"
    config.write_text("apiVersion: heliostat/v1\nname: acme\nmodules:\n  clickstream:\n"
                      "    event_api: {replicas: -1}\n")
    result = bare(sys.executable, "validate", "-f", str(config), cache=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"{config}:5: modules.clickstream.event_api.replicas: "
                             "-1 is less than the minimum of 1\n")


def test_embeds_profiles_and_bundles_and_is_reproducible(zipapp: Path, tmp_path: Path):
    names = zipfile.ZipFile(zipapp).namelist()
    assert "app/heliostat/_data/profiles/kubernetes/manifests.yaml.j2" in names
    assert "app/heliostat/_data/bundles/airflow/module.yaml" in names
    rebuilt = tmp_path / "again.pyz"
    cache = Path(os.environ.get("HELIOSTAT_DEV_CACHE", "/var/cache/heliostat-dev"))
    subprocess.run([sys.executable, str(ROOT / "tools" / "build_zipapp.py"), "--cache",
                    str(cache / "zipapp-wheels"), "--out", str(rebuilt)], check=True,
                   capture_output=True)
    assert rebuilt.read_bytes() == zipapp.read_bytes()


def test_a_half_unpacked_cache_from_a_killed_run_is_replaced(zipapp: Path, tmp_path: Path):
    first = bare(sys.executable, "version", cache=tmp_path)
    assert first.returncode == 0
    (unpacked,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    (unpacked / ".complete").unlink()
    shutil.rmtree(unpacked / "app" / "heliostat")
    again = bare(sys.executable, "version", cache=tmp_path)
    assert again.returncode == 0, again.stderr


def test_refuses_an_unsupported_interpreter_clearly(zipapp: Path, tmp_path: Path):
    old = sorted(Path("/root/.pyenv/versions").glob("3.[6-9]*/bin/python3"))
    if not old:
        pytest.skip("no CPython older than 3.10 on this machine")
    result = bare(str(old[-1]), "--help", cache=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("heliostat: this heliostat.pyz runs on CPython 3.10, ")
