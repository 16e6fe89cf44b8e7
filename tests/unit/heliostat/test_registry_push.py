"""The OCI manifest of a bundle's image follows from the bundle's manifest alone."""

import hashlib
import json

from heliostat.bundle.layout import Image, Layer, Manifest, Member
from heliostat.bundle.registry_push import Destination, image_digests, manifest_digest, oci_manifest

CONFIG_ID = "sha256:" + "c" * 64
LAYERS = ("sha256:" + "1" * 64, "sha256:" + "2" * 64)


def bundle_manifest() -> Manifest:
    image = Image("postgres", "heliostat/postgres:0.1.0", CONFIG_ID,
                  tuple(Layer(d, 1000) for d in LAYERS))
    members = (Member(image.config, 321, "c" * 64), Member(image.sbom, 10, "d" * 64),
               *(Member(la.member, 500 + i, f"{i}" * 64) for i, la in enumerate(image.layers)))
    return Manifest("heliostat", "0.1.0", "sha256:" + "0" * 64, (image,), members)


def test_the_manifest_describes_the_members_as_stored():
    manifest = bundle_manifest()
    document = json.loads(oci_manifest(manifest, manifest.images[0]))
    assert document["config"] == {"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": CONFIG_ID, "size": 321}
    assert [(la["digest"], la["size"]) for la in document["layers"]] == [
        ("sha256:" + "0" * 64, 500), ("sha256:" + "1" * 64, 501)]
    assert {la["mediaType"] for la in document["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"}
    assert oci_manifest(manifest, manifest.images[0]) == oci_manifest(bundle_manifest(),
                                                                      manifest.images[0])
    assert manifest_digest(manifest, manifest.images[0]) == "sha256:" + hashlib.sha256(
        oci_manifest(manifest, manifest.images[0])).hexdigest()


def test_the_reference_is_the_one_the_model_renders():
    manifest = bundle_manifest()
    destination = Destination("registry.internal:5000/mirror", manifest.images[0])
    assert destination.repository == "mirror/heliostat/postgres"
    assert destination.reference == "registry.internal:5000/mirror/heliostat/postgres:0.1.0"
    assert image_digests(manifest, ["postgres"], "registry.internal:5000") == {
        "registry.internal:5000/heliostat/postgres:0.1.0": manifest_digest(
            manifest, manifest.images[0])}
