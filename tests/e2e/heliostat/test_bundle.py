"""The bundle on a real Docker engine: build, verify, inspect and load, and every kind of
bad bundle refused with a precise message before anything is loaded.

The bundle here holds two small images of our own, the second built on the first (so a
layer is shared), on top of the platform's base image, compressed fast; the full
platform's bundle is exercised by test_bundle_platform.py."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from heliostat.bundle.engine_export import PartsCache
from heliostat.bundle.layout import MANIFEST, BundleError
from heliostat.bundle.loader import load_into_engine
from heliostat.bundle.reader import BundleReader, verify
from heliostat.bundle.registry_push import manifest_digest
from heliostat.bundle.writer import build_bundle
from heliostat.oci_registry import Registry
from tests.e2e.heliostat import bundle_files
from tests.infra.run_dir import OWNER_LABEL, RunDir

REPOSITORY = Path(__file__).resolve().parents[3]
BASE = "heliostat/base:0.1.0"


def heliostat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "heliostat", *args], capture_output=True,
                          text=True, cwd=REPOSITORY, env={"PYTHONPATH": "installer",
                                                          "PATH": "/usr/bin:/bin"})


def _build(client: docker.DockerClient, tag: str, parent: str, file: str, owner: str) -> str:
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", f"FROM {parent}\nCOPY {file} /{file}\n".encode()),
                           (file, f"{tag}\n".encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=tag,
                                   labels={OWNER_LABEL: owner}, network_mode="none", rm=True)
    return image.id


@pytest.fixture(scope="module")
def images(docker_client: docker.DockerClient, testbed_run: RunDir):
    try:
        docker_client.images.get(BASE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{BASE} is missing: run `make images`", pytrace=False)
    tag = testbed_run.token.replace("-", "")
    one, two = f"heliostat-bundle-test/one:{tag}", f"heliostat-bundle-test/two:{tag}"
    _build(docker_client, one, BASE, "one.txt", testbed_run.token)
    _build(docker_client, two, one, "two.txt", testbed_run.token)
    yield {"one": one, "two": two}
    for reference in (two, one):
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(reference, force=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("keys")
    paths = {}
    for name in ("signer", "stranger"):
        key = Ed25519PrivateKey.generate()
        paths[name] = directory / name
        paths[name].write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        paths[f"{name}.pub"] = directory / f"{name}.pub"
        paths[f"{name}.pub"].write_bytes(key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH))
    return paths


@pytest.fixture(scope="module")
def bundle(docker_client, images, keys, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("bundle")
    installer = directory / "heliostat.pyz"
    installer.write_bytes(b"#!/usr/bin/env python3\n# stands in for the zipapp\n")
    path = directory / "test.bundle"
    build_bundle(docker_client, path, installer, PartsCache(directory / "parts"),
                 sign_key=keys["signer"], level=1, references=images)
    return path


def test_verify_accepts_the_bundle_and_checks_its_signature(bundle, keys):
    result = heliostat("bundle", "verify", str(bundle), "--key", str(keys["signer.pub"]),
                       "--version", "0.1.0", "--output", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["valid"] and report["images"] == 2 and report["signature"] == "valid"


def test_the_same_images_give_the_same_bytes(docker_client, bundle, images, keys, tmp_path):
    again = tmp_path / "again.bundle"
    build_bundle(docker_client, again, bundle.parent / "heliostat.pyz",
                 PartsCache(bundle.parent / "parts"), sign_key=keys["signer"], level=1,
                 references=images)
    assert again.read_bytes() == bundle.read_bytes()


def test_a_shared_layer_is_stored_once(bundle, docker_client, images):
    names = [info.name for info, _ in bundle_files.members(bundle)]
    layers = [n for n in names if n.startswith("layers/")]
    one = docker_client.images.get(images["one"]).attrs["RootFS"]["Layers"]
    two = docker_client.images.get(images["two"]).attrs["RootFS"]["Layers"]
    assert len(layers) == len(set(one) | set(two)) == len(two)
    assert names[0] == MANIFEST


def test_inspect_lists_images_and_their_sbom(bundle):
    result = heliostat("bundle", "inspect", str(bundle), "--output", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [i["name"] for i in report["images"]] == ["one", "two"]
    for image in report["images"]:
        # The base's Debian packages, read from the image's own dpkg database.
        assert image["sbom"]["deb"] > 50
    sbom = json.loads(dict((i.name, d) for i, d in bundle_files.members(bundle))
                      ["sbom/one.cdx.json"])
    assert sbom["bomFormat"] == "CycloneDX"
    assert any(c["name"] == "python3.11" and c["purl"].startswith("pkg:deb/debian/python3.11@")
               for c in sbom["components"])


def _refused(path: Path, *flags: str) -> str:
    result = heliostat("bundle", "verify", str(path), *flags)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    return result.stderr


def test_truncated_bundle(bundle, tmp_path):
    for fraction in (0.1, 0.5, 0.999):
        cut = tmp_path / "cut.bundle"
        cut.write_bytes(bundle.read_bytes()[: int(bundle.stat().st_size * fraction)])
        message = _refused(cut)
        assert "truncated" in message or "lacks" in message, message


def test_one_flipped_byte_anywhere(bundle, tmp_path):
    size = bundle.stat().st_size
    # The manifest, the first member's header, mid-file (a layer) and the last bytes of data.
    padding = 512 + len(bundle_files.members(bundle)[0][1])  # just after the manifest's data
    for offset in (700, padding, 512 * 3 + 100, size // 2, size - 2048, size - 1):
        flipped = bundle_files.flip_byte(bundle, tmp_path / "flipped.bundle", offset)
        message = _refused(flipped)
        assert "damaged" in message or "truncated" in message, (offset, message)


def test_manifest_that_lies_about_a_digest(bundle, tmp_path):
    def lie(document):
        layer = next(m for m in document["members"] if m["name"].startswith("layers/"))
        layer["sha256"] = "0" * 64

    lying = bundle_files.rewritten(bundle, tmp_path / "lying.bundle",
                                   lambda e: bundle_files.edit_manifest(e, lie))
    assert "is damaged: its sha256 is not the one the manifest lists" in _refused(lying)


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "layers/../../x"])
def test_member_with_an_unsafe_path(bundle, tmp_path, name):
    def add(document):
        document["members"].append({"name": name, "size": 1, "sha256": "0" * 64})

    unsafe = bundle_files.rewritten(bundle, tmp_path / "unsafe.bundle",
                                    lambda e: bundle_files.edit_manifest(e, add))
    assert "unsafe path" in _refused(unsafe)
    # Not listed in the manifest either: refused as it streams past.
    extra = bundle_files.rewritten(
        bundle, tmp_path / "extra.bundle",
        lambda e: [*e, (tarfile.TarInfo(name), b"x")])
    assert "unsafe path" in _refused(extra)


@pytest.mark.parametrize("hard", [False, True])
def test_links_out_of_the_bundle(bundle, tmp_path, hard):
    linked = bundle_files.rewritten(
        bundle, tmp_path / "linked.bundle",
        lambda e: [*e[:3], bundle_files.link("sbom/evil", "/etc/shadow", hard), *e[3:]])
    assert ("hard link" if hard else "symbolic link") in _refused(linked)


def test_missing_member(bundle, tmp_path):
    without = bundle_files.rewritten(
        bundle, tmp_path / "without.bundle",
        lambda e: [m for m in e if not m[0].name.startswith("configs/")])
    assert "lacks" in _refused(without) and "configs/" in _refused(without)


def test_missing_image_for_a_platform(bundle):
    message = _refused(bundle, "-f", "examples/compose.yaml")
    # The test bundle holds none of the platform's images; each missing one is named.
    assert "lacks image(s)" in message and "kafka" in message and "clickstream" in message


def test_signature_checks(bundle, keys, tmp_path, docker_client, images):
    assert "does not match the key" in _refused(bundle, "--key", str(keys["stranger.pub"]))
    unsigned = bundle_files.rewritten(
        bundle, tmp_path / "unsigned.bundle",
        lambda e: [m for m in e if m[0].name != "heliostat-bundle.sig"])
    assert verify(unsigned)["signature"] == "none"
    assert "is not signed" in _refused(unsigned, "--key", str(keys["signer.pub"]))


def test_pinned_version(bundle):
    assert "not the pinned 9.9.9" in _refused(bundle, "--version", "9.9.9")


def test_not_a_bundle(tmp_path):
    other = tmp_path / "other.tar"
    with tarfile.open(other, "w") as archive:
        archive.addfile(tarfile.TarInfo("hello"), io.BytesIO(b""))
    assert "is not a heliostat bundle" in _refused(other)
    assert "cannot open" in _refused(tmp_path / "absent.bundle")


def _remove(client: docker.DockerClient, images: dict[str, str]) -> list[str]:
    ids = [client.images.get(ref).id for ref in images.values()]
    for reference in (images["two"], images["one"]):
        client.images.remove(reference, force=True)
    return ids


def _present(client: docker.DockerClient, image_id: str) -> bool:
    try:
        client.images.get(image_id)
        return True
    except docker.errors.ImageNotFound:
        return False


def test_load_skips_what_is_present_and_loads_what_is_missing(bundle, docker_client, images):
    report = load_into_engine(bundle, docker_client)
    assert report["loaded"] == [] and sorted(report["already_present"]) == ["one", "two"]
    ids = _remove(docker_client, images)
    seen = []
    report = load_into_engine(bundle, docker_client,
                              progress=lambda name, done, total: seen.append((name, done, total)))
    assert sorted(report["loaded"]) == ["one", "two"]
    assert [docker_client.images.get(ref).id for ref in images.values()] == ids
    # Progress reached each image's full size; the shared layers count for one image.
    finals = {name: (done, total) for name, done, total in seen}
    assert all(done == total for done, total in finals.values())
    assert finals["two"][1] < finals["one"][1]


def test_a_damaged_bundle_loads_nothing(bundle, docker_client, images, tmp_path):
    damaged = bundle_files.last_layer_damaged(bundle, tmp_path / "damaged.bundle")
    ids = _remove(docker_client, images)
    with pytest.raises(BundleError, match="damaged"):
        load_into_engine(damaged, docker_client)
    assert not any(_present(docker_client, image_id) for image_id in ids)
    load_into_engine(bundle, docker_client)  # the next test may need them back
    assert all(_present(docker_client, image_id) for image_id in ids)


def test_build_into_an_impossible_place_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = heliostat("bundle", "build", "-o", str(blocker / "x.bundle"),
                       "--installer", str(blocker), "--cache-dir", str(tmp_path / "parts"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "a-file" in result.stderr, result.stderr


# -- pushing to a registry --

def _unique_members(bundle: Path) -> int:
    """Bytes of the configs and layers: what a push sends when the registry has none."""
    with BundleReader(bundle) as reader:
        return sum(m.size for m in reader.manifest.members
                   if m.name.startswith(("configs/", "layers/")))


def test_push_sends_each_blob_once_and_the_engine_pulls_the_very_images(
        bundle, keys, registry, docker_client):
    target = f"{registry.url}/push{uuid.uuid4().hex[:6]}"
    result = heliostat("bundle", "push", str(bundle), target, "--key", str(keys["signer.pub"]),
                       "--output", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert sorted(report["pushed"]) == ["one", "two"] and report["already_present"] == []
    # the layers `two` shares with `one` were mounted, not sent again
    assert report["bytes_sent"] == _unique_members(bundle)
    with BundleReader(bundle) as reader:
        for image in reader.manifest.images:
            digest = manifest_digest(reader.manifest, image)
            repository = f"{target}/{image.reference.rpartition(':')[0]}"
            pulled = docker_client.images.pull(f"{repository}@{digest}")
            try:
                assert pulled.id == image.id
            finally:
                docker_client.images.remove(f"{repository}@{digest}", force=True)
    again = heliostat("bundle", "push", str(bundle), target, "--output", "json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["pushed"] == [] and report["bytes_sent"] == 0
    assert sorted(report["already_present"]) == ["one", "two"]


def test_push_to_a_registry_that_is_not_there_is_a_clear_error(bundle):
    from tests.infra.processes import free_port

    result = heliostat("bundle", "push", str(bundle), f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "cannot be reached" in result.stderr and "Traceback" not in result.stderr


def test_push_of_a_damaged_bundle_tags_nothing_broken(bundle, registry, tmp_path):
    damaged = bundle_files.last_layer_damaged(bundle, tmp_path / "damaged.bundle")
    target = f"{registry.url}/damaged{uuid.uuid4().hex[:6]}"
    result = heliostat("bundle", "push", str(damaged), target)
    assert result.returncode == 1
    assert "is damaged" in result.stderr and "Traceback" not in result.stderr
    with BundleReader(bundle) as reader:
        for image in reader.manifest.images:
            name, _, tag = image.reference.rpartition(":")
            prefix = target.partition("/")[2]
            assert Registry(registry.url).manifest_digest(f"{prefix}/{name}", tag) is None
