"""Air-gapped images on Kubernetes: `install --bundle` pushes the bundle's images to the
registry the config names (the test bed's), the objects pin them to the bundle's digests —
the same references `render --bundle` writes — and the ledger keeps the pins, so an
upgrade without the bundle changes nothing."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from heliostat import __version__
from heliostat.bundle.engine_export import PartsCache
from heliostat.bundle.reader import BundleReader
from heliostat.bundle.registry_push import manifest_digest
from heliostat.bundle.writer import build_bundle
from tests.infra.compose_platforms import heliostat_env
from tests.infra.kubernetes_cluster import STORAGE_CLASS, KubernetesCluster
from tests.infra.registry import Registry
from tests.infra.settings import cache_dir

REPOSITORY = Path(__file__).resolve().parents[3]
# The core stores and the gateway: every image this platform runs, and no more.
IMAGES = ("gateway", "kafka", "postgres", "redis", "registry")
DISABLED = ("clickstream", "commander", "pilot", "monitoring")


@pytest.fixture(scope="module")
def core_bundle(docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
                ) -> Path:
    installer = REPOSITORY / "dist" / "heliostat.pyz"
    if not installer.exists():
        pytest.fail("dist/heliostat.pyz is missing: run `make zipapp`", pytrace=False)
    path = tmp_path_factory.mktemp("core-bundle") / "core.bundle"
    build_bundle(docker_client, path, installer, PartsCache(cache_dir() / "bundle-parts-3"),
                 level=3, references={n: f"heliostat/{n}:{__version__}" for n in IMAGES})
    return path


class BundledPlatform:
    def __init__(self, cluster: KubernetesCluster, directory: Path, registry: str) -> None:
        self.cluster = cluster
        self.name = f"b{uuid.uuid4().hex[:8]}"
        self.registry = registry
        self.config = directory / "platform.yaml"
        modules = "".join(f"  {m}: {{enabled: false}}\n" for m in DISABLED)
        self.config.write_text(textwrap.dedent(f"""\
            apiVersion: heliostat/v1
            name: {self.name}
            profile: kubernetes
            target:
              kubernetes: {{namespace: {self.name}, storage_class: {STORAGE_CLASS}}}
            images: {{registry: "{registry}"}}
            modules:
            """) + modules)

    def run(self, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "heliostat", *args, "-f", str(config or self.config)]
        if args[0] != "render":
            command += ["--kubeconfig", str(self.cluster.kubeconfig)]
        return subprocess.run(command, capture_output=True, text=True, timeout=600,
                              cwd=REPOSITORY, env=heliostat_env(), stdin=subprocess.DEVNULL)

    def live_images(self) -> dict[str, list[str]]:
        images = {}
        for kind in ("deployments", "statefulsets"):
            listing = yaml.safe_load(self.cluster.kubectl(
                "get", kind, "-n", self.name, "-o", "yaml").stdout)
            for item in listing["items"]:
                spec = item["spec"]["template"]["spec"]
                images[item["metadata"]["name"]] = [
                    c["image"] for c in spec.get("initContainers", []) + spec["containers"]]
        return images


@pytest.fixture(scope="module")
def platform(kubernetes: KubernetesCluster, registry: Registry, core_bundle: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[BundledPlatform]:
    prefix = f"{registry.url}/air{uuid.uuid4().hex[:6]}"  # a registry path of its own
    installed = BundledPlatform(kubernetes, tmp_path_factory.mktemp("bundled"), prefix)
    result = installed.run("install", "--bundle", str(core_bundle))
    assert result.returncode == 0, result.stderr
    installed.install_log = result.stderr  # type: ignore[attr-defined]
    yield installed
    kubernetes.kubectl("delete", "namespace", installed.name, "--wait=false", check=False)


def test_install_pushes_the_images_and_pins_every_object_to_the_registrys_digests(
        platform: BundledPlatform, core_bundle: Path, registry: Registry) -> None:
    assert f"images: {len(IMAGES)} pushed" in platform.install_log  # type: ignore[attr-defined]
    with BundleReader(core_bundle) as reader:
        expected = {name: manifest_digest(reader.manifest, reader.manifest.image(name))
                    for name in IMAGES}
    live = platform.live_images()
    assert set(live) == {"postgres", "kafka", "redis", "registry"}  # the Ingress routes
    prefix = platform.registry.partition("/")[2]
    for workload, references in live.items():
        for reference in references:
            repository_tag, _, digest = reference.partition("@")
            name = repository_tag.rpartition("/")[2].partition(":")[0]
            assert repository_tag == f"{platform.registry}/heliostat/{name}:{__version__}"
            assert digest == expected[name], workload
            # what the registry serves under the tag is that very manifest
            request = urllib.request.Request(
                f"http://{registry.url}/v2/{prefix}/heliostat/{name}/manifests/{__version__}",
                method="HEAD",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.headers["Docker-Content-Digest"] == digest


def test_render_with_the_bundle_writes_what_install_applied(
        platform: BundledPlatform, core_bundle: Path, tmp_path: Path) -> None:
    result = platform.run("render", "--bundle", str(core_bundle), "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rendered = {}
    for path in tmp_path.glob("*.yaml"):
        body = yaml.safe_load(path.read_text())
        if body["kind"] in ("Deployment", "StatefulSet"):
            spec = body["spec"]["template"]["spec"]
            rendered[body["metadata"]["name"]] = [
                c["image"] for c in spec.get("initContainers", []) + spec["containers"]]
    assert rendered == platform.live_images()
    unpinned = tmp_path / "unpinned"
    platform.run("render", "-o", str(unpinned))
    assert "@sha256:" not in "".join(p.read_text() for p in unpinned.glob("*.yaml"))


def test_the_ledger_keeps_the_pins_so_an_upgrade_without_the_bundle_changes_nothing(
        platform: BundledPlatform) -> None:
    document = json.loads(base64.b64decode(platform.cluster.kubectl(
        "get", "secret", f"heliostat-ledger-{platform.name}-revision-000001.json", "-n",
        platform.name, "-o", "jsonpath={.data.document}").stdout))
    pinned = {ref for refs in platform.live_images().values() for ref in refs}
    assert pinned <= {f"{ref}@{digest}" for ref, digest in document["images"].items()}
    again = platform.run("upgrade")
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout


def test_a_second_install_with_the_bundle_sends_nothing_again(
        platform: BundledPlatform, core_bundle: Path) -> None:
    result = platform.run("upgrade", "--bundle", str(core_bundle))
    assert result.returncode == 0, result.stderr
    assert f"0 pushed (0 MB sent), {len(IMAGES)} already there" in result.stderr
    assert "nothing to do" in result.stdout


def test_a_bundle_needs_a_registry_on_kubernetes(
        kubernetes: KubernetesCluster, core_bundle: Path, tmp_path: Path) -> None:
    platform = BundledPlatform(kubernetes, tmp_path, "")
    platform.config.write_text(platform.config.read_text().replace('images: {registry: ""}\n',
                                                                   ""))
    result = platform.run("install", "--bundle", str(core_bundle))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "images.registry" in result.stderr and "Traceback" not in result.stderr
    assert kubernetes.kubectl("get", "namespace", platform.name, check=False).returncode != 0


def test_a_registry_that_is_not_there_stops_the_install_before_anything_is_applied(
        kubernetes: KubernetesCluster, core_bundle: Path, tmp_path: Path) -> None:
    from tests.infra.processes import free_port

    platform = BundledPlatform(kubernetes, tmp_path, f"127.0.0.1:{free_port()}")
    result = platform.run("install", "--bundle", str(core_bundle))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot be reached" in result.stderr and "Traceback" not in result.stderr
    history = platform.run("history", "--output", "json")
    assert json.loads(history.stdout or "[]") == []


def test_diff_with_a_file_that_is_no_bundle_is_refused_clearly(
        kubernetes: KubernetesCluster, registry: Registry, tmp_path: Path) -> None:
    platform = BundledPlatform(kubernetes, tmp_path, registry.url)
    damaged = tmp_path / "damaged.bundle"
    damaged.write_bytes(b"not a bundle")
    result = platform.run("diff", "--bundle", str(damaged))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {damaged}: ") and "Traceback" not in result.stderr
