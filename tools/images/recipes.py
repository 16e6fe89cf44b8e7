"""Image recipes: discovery, parent order, and the recipe key that decides a rebuild."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL_DIR = Path(__file__).resolve().parent
IGNORED_PARTS = {"__pycache__", ".pytest_cache"}


class RecipeError(Exception):
    """A recipe that cannot be built as written; the message names it."""


@dataclass(frozen=True)
class Recipe:
    name: str
    module: str
    directory: Path
    spec: dict[str, Any] = field(hash=False)

    @property
    def parent(self) -> str | None:
        return self.spec.get("from")

    @property
    def is_base(self) -> bool:
        return "debootstrap" in self.spec

    @property
    def debs_lock(self) -> Path:
        return self.directory / "debs.lock"

    @property
    def jars_lock(self) -> Path:
        return self.directory / "jars.lock"

    @property
    def npm_lock(self) -> Path:
        return self.directory / "npm.lock"

    @property
    def npm_packages(self) -> list[str]:
        return list(self.spec.get("npm", []))

    @property
    def wheels_lock(self) -> Path | None:
        name = self.spec.get("wheels")
        return self.directory / name if name else None

    @property
    def pom(self) -> Path | None:
        name = self.spec.get("jars")
        return self.directory / name if name else None

    @property
    def go_module(self) -> str | None:
        return (self.spec.get("go") or {}).get("module")

    @property
    def sources(self) -> list[str]:
        return list(self.spec.get("sources", []))


def discover(root: Path = ROOT) -> dict[str, Recipe]:
    recipes: dict[str, Recipe] = {}
    for spec_file in sorted(root.glob("bundles/*/images/*/image.yaml")):
        directory = spec_file.parent
        name = directory.name
        if name in recipes:
            raise RecipeError(f"image {name!r} has two recipes: {recipes[name].directory} "
                              f"and {directory}")
        spec = yaml.safe_load(spec_file.read_text()) or {}
        if ("from" in spec) == ("debootstrap" in spec):
            raise RecipeError(f"{spec_file}: needs exactly one of `from` and `debootstrap`")
        recipes[name] = Recipe(name, directory.parent.parent.name, directory, spec)
    for recipe in recipes.values():
        if recipe.parent and recipe.parent not in recipes:
            raise RecipeError(f"{recipe.directory}/image.yaml: parent image "
                              f"{recipe.parent!r} has no recipe")
    return recipes


def build_order(recipes: dict[str, Recipe], names: list[str] | None = None) -> list[Recipe]:
    """The named recipes (all when none) with their parents, parents first."""
    ordered: list[Recipe] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(r.name == name for r in ordered):
            return
        if name not in recipes:
            raise RecipeError(f"no image recipe named {name!r} (known: "
                              f"{', '.join(sorted(recipes))})")
        if name in visiting:
            raise RecipeError(f"image {name!r} is its own ancestor")
        visiting.add(name)
        parent = recipes[name].parent
        if parent:
            visit(parent)
        ordered.append(recipes[name])

    for name in names or sorted(recipes):
        visit(name)
    return ordered


def tree_digest(paths: list[Path], relative_to: Path) -> str:
    """sha256 over the names and bytes of every file under `paths`, in a fixed order."""
    digest = hashlib.sha256()
    for top in paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if IGNORED_PARTS & set(path.parts):
                continue
            digest.update(str(path.relative_to(relative_to)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def recipe_key(recipe: Recipe, parent_id: str | None) -> str:
    """Changes when anything that goes into the image changes: its recipe folder (locks
    included), the project sources it copies, its parent image and this build tool."""
    digest = hashlib.sha256()
    digest.update(tree_digest([TOOL_DIR], ROOT).encode())
    digest.update(tree_digest([recipe.directory], ROOT).encode())
    digest.update(tree_digest([ROOT / s for s in recipe.sources], ROOT).encode())
    digest.update(f"{parent_id}".encode())
    return digest.hexdigest()[:16]
