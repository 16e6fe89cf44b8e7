from pathlib import Path

import pytest

from heliostat.config import PlatformConfig, load_config

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = {p.stem: p for p in sorted((ROOT / "examples").glob("*.yaml"))}


@pytest.fixture(params=sorted(EXAMPLES))
def example(request) -> PlatformConfig:
    return load_config(EXAMPLES[request.param])


@pytest.fixture
def default_config() -> PlatformConfig:
    return load_config(None)


@pytest.fixture
def example_config():
    """Load one of examples/*.yaml by name."""
    return lambda name: load_config(EXAMPLES[name])
