"""Print every requirement of pyproject.toml (runtime and all extras), one per line.

The development virtualenv installs these without installing heliostat itself, so that
tests always import the checked-out source (see pytest's `pythonpath`).
"""

from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
for extra in project.get("optional-dependencies", {}).values():
    requirements.extend(extra)
print("\n".join(requirements))
