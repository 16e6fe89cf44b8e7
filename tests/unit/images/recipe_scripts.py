"""Import a Python script of an image recipe (they live beside image.yaml, not in a package)."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BUNDLES = Path(__file__).resolve().parents[3] / "bundles"


def recipe_dir(module: str, image: str) -> Path:
    return BUNDLES / module / "images" / image


def load_script(module: str, image: str, script: str) -> ModuleType:
    path = recipe_dir(module, image) / script
    spec = importlib.util.spec_from_file_location(f"recipe_{image}_{path.stem}", path)
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = loaded
    spec.loader.exec_module(loaded)
    return loaded
