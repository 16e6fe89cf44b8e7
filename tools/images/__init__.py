"""Hermetic image builds from `bundles/*/images/*/` recipes (see docs/images.md)."""
