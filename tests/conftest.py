"""Test-suite wiring: every test is marked by the folder it lives in.

`tests/unit` needs nothing running; `tests/integration` needs the test bed's Postgres,
Redis or Kafka; `tests/e2e` needs its Docker engine, SSH hosts or Kubernetes API;
`tests/testbed` are the test bed's own smoke tests.
"""

from pathlib import Path

import pytest

pytest_plugins = ["tests.infra.fixtures"]
TESTS = Path(__file__).parent
MARKER_BY_FOLDER = {folder: folder for folder in ("unit", "integration", "e2e", "testbed")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.fspath).relative_to(TESTS).parts[0]
        marker = MARKER_BY_FOLDER.get(folder)
        if marker:
            item.add_marker(marker)
