"""heliostat: a declarative installer for a self-hosted data platform."""

__version__ = "0.1.0"
