"""What the Kubernetes target records of the images a revision pins."""

from __future__ import annotations

import hashlib

from heliostat.model import build_model, pin_images
from heliostat.target import rendered_files
from heliostat.target_kubernetes import pinned_digests


def test_a_revisions_pins_are_read_back_from_its_manifests(example_config):
    model = build_model(example_config("kubernetes"))
    references = sorted({s.image_ref for s in model.services}
                        | {sc["image_ref"] for s in model.services for sc in s.sidecars})
    digests = {ref: "sha256:" + hashlib.sha256(ref.encode()).hexdigest() for ref in references}
    unpinned = "".join(rendered_files(model).values())
    rendered = {ref: digest for ref, digest in digests.items() if f"image: {ref}\n" in unpinned}
    assert len(rendered) >= 10
    # A rollback records the digests of the revision it returns to, read from its manifests
    assert pinned_digests(rendered_files(pin_images(model, digests))) == rendered
    assert pinned_digests(rendered_files(model)) == {}
