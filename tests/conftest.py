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
# `make test` hands whole files to two workers (pytest-xdist, --dist loadfile); the slowest
# folders go first so that no long file is left to run alone at the end.
FOLDERS_SLOWEST_FIRST = ("e2e", "integration", "testbed", "packaging", "unit")


def _folder(item: pytest.Item) -> str:
    return Path(item.fspath).relative_to(TESTS).parts[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = MARKER_BY_FOLDER.get(_folder(item))
        if marker:
            item.add_marker(marker)
    # A stable sort: within a folder, files and tests keep their collection order.
    items.sort(key=lambda item: FOLDERS_SLOWEST_FIRST.index(_folder(item))
               if _folder(item) in FOLDERS_SLOWEST_FIRST else len(FOLDERS_SLOWEST_FIRST))
