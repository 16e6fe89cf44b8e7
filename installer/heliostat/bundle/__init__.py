"""The air-gapped bundle: one file holding the installer, every image of the platform
(each layer stored once, zstd-compressed), an SBOM per image and a manifest of sha256
digests, optionally signed with ed25519.

`layout` defines the file; `writer` builds it from the local Docker engine, `reader`
streams and verifies it, `loader` loads its images into an engine, `sbom` and
`signature` do one job each.
"""

from heliostat.bundle.layout import BundleError

__all__ = ["BundleError"]
