"""The air-gapped bundle: one file holding the installer, every image of the platform
(each layer stored once, zstd-compressed), an SBOM per image and a manifest of sha256
digests, optionally signed with ed25519.

`layout` defines the file; `writer` builds it from the local Docker engine, `reader`
streams and verifies it, `loader` loads its images into an engine, `completeness` says
whether it serves a platform.yaml; `sbom` and `signature` do one job each.
"""

from heliostat.bundle.completeness import missing_images
from heliostat.bundle.layout import BundleError
from heliostat.bundle.loader import load_into_engine

__all__ = ["BundleError", "load_into_engine", "missing_images"]
