"""The `bundle` check of `heliostat doctor`, the same on every target: the bundle given with
`--bundle` is there, its manifest intact, its size what the manifest lists, of this
heliostat's version, and holding every image the platform runs.

Read-only and quick: the manifest and the file's size are read, not the images, whose
every byte is checked as they load (and by `heliostat bundle verify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from heliostat import __version__
from heliostat.doctor import Finding

if TYPE_CHECKING:
    from heliostat.bundle.layout import Manifest
    from heliostat.model import PlatformModel

TAR_BLOCK = 512
# What the fix of a missing bundle offers instead, by default the Compose target's case.
IN_THE_ENGINE = "if the images are in the engine already"


@dataclass(frozen=True)
class BundleState:
    manifest: Manifest | None  # None: no bundle given, or one that cannot be used
    finding: Finding


def smallest_tar_size(member_sizes: list[int]) -> int:
    """The fewest bytes a tar holding members of these sizes takes: a header block each,
    and the data padded to whole blocks."""
    return sum(TAR_BLOCK + -(-size // TAR_BLOCK) * TAR_BLOCK for size in member_sizes)


def read_bundle(path: Path, model: PlatformModel,
                leave_out_when: str = IN_THE_ENGINE) -> BundleState:
    """Its manifest (checked against its recorded digest), its size against what the
    manifest lists, its version and whether it holds every image the platform runs.
    Every byte of the images is checked when they are loaded, not here. `leave_out_when`:
    when the target needs no bundle, for the fix of one that is not there."""
    from heliostat.bundle import BundleError, missing_images
    from heliostat.bundle.catalog_images import model_images
    from heliostat.bundle.reader import BundleReader

    damaged = f"get an intact copy (`heliostat bundle verify {path}` checks every byte)"
    if not path.exists():
        # Before the reader, whose "cannot open" would send the user after a damaged copy
        return BundleState(None, Finding.fail(
            f"there is no bundle at {path}",
            f"give --bundle the path of the bundle file (`make bundle` writes "
            f"dist/heliostat-{__version__}.bundle), or leave --bundle out {leave_out_when}"))
    try:
        with BundleReader(path) as reader:
            manifest, digest = reader.manifest, reader.digest
            manifest_size = len(reader.manifest_bytes)
            signed = reader.signed
        size = path.stat().st_size
    except BundleError as exc:
        return BundleState(None, Finding.fail(f"{path}: {exc}", damaged))
    except OSError as exc:
        return BundleState(None, Finding.fail(f"cannot read {path}: {exc.strerror}", damaged))
    # The members come last, so a file cut short anywhere in their data is smaller than
    # this. The digest and the signature take a block of data each (sizes of 1 count one).
    smallest = smallest_tar_size([manifest_size, 1, *([1] if signed else []),
                                  *(m.size for m in manifest.members)])
    if size < smallest:
        return BundleState(None, Finding.fail(
            f"{path} is truncated: it has {size} bytes, but the members its manifest lists "
            f"take at least {smallest}", damaged))
    if manifest.version != __version__:
        return BundleState(None, Finding.fail(
            f"{path} carries the images of heliostat {manifest.version}, not {__version__}",
            f"use the bundle of heliostat {__version__}, or run the installer the bundle "
            "carries"))
    missing = missing_images(manifest, model_images(model))
    if missing:
        return BundleState(manifest, Finding.fail(
            f"{path} lacks the image(s) {', '.join(missing)} that platform {model.name} runs",
            "use a bundle built with every image (`make bundle`)"))
    return BundleState(manifest, Finding.ok(
        f"{path}: heliostat {manifest.version} ({digest[:19]}...), manifest intact, holds "
        f"all {len(model_images(model))} images the platform runs (their bytes are checked "
        "as they load)"))


def bundle_state(path: Path | None, model: PlatformModel, without: str,
                 leave_out_when: str = IN_THE_ENGINE) -> BundleState:
    """The bundle check's state: `without` is the finding when no bundle was given (where
    the target takes its images from then)."""
    if path is None:
        return BundleState(None, Finding.ok(f"no --bundle given: {without}"))
    return read_bundle(path, model, leave_out_when)
