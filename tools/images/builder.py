"""Build one image from its recipe: `docker run --network none` of the parent with the
inputs mounted read-only, then `docker commit` with the recipe's config — one layer
per image, nothing of the build left in it. The base starts from a debootstrapped
root file system imported into the engine."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tools.images import debs, go_binaries, inputs_cache, jars, npm, wheels
from tools.images.recipes import ROOT, TOOL_DIR, Recipe, recipe_key

VERSION_FILE = ROOT / "installer" / "heliostat" / "__init__.py"
LABEL_RECIPE = "io.heliostat.recipe"
# What the engine uses when an image sets no PATH.
DOCKER_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def platform_version() -> str:
    for line in VERSION_FILE.read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError(f"no __version__ in {VERSION_FILE}")


def tag(name: str) -> str:
    return f"heliostat/{name}:{platform_version()}"


def docker(*args: str, capture: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=capture, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or "").strip()[-3000:] if capture else ""
        raise RuntimeError(f"docker {' '.join(args[:3])} ... failed: {detail}")
    return (result.stdout or "").strip()


def image_config(reference: str) -> dict | None:
    result = subprocess.run(["docker", "image", "inspect", "--format",
                             "{{json .Id}}\t{{json .Config}}", reference],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    image_id, config = result.stdout.strip().split("\t", 1)
    return {"Id": json.loads(image_id), **(json.loads(config) or {})}


def rootfs_image(recipe: Recipe) -> str:
    """The debootstrapped root file system of the base, imported once per recipe."""
    spec = recipe.spec["debootstrap"]
    include = ",".join(spec.get("include", []))
    key = hashlib.sha256(f"{spec['suite']} {include} {debs.mirrors()['debian']}".encode()
                         ).hexdigest()[:16]
    reference = f"heliostat/base-rootfs:{key}"
    if image_config(reference):
        return reference
    tarball = inputs_cache.cache_root() / f"rootfs-{spec['suite']}-{key}.tar"
    if not tarball.exists():
        with tempfile.TemporaryDirectory(dir=inputs_cache.cache_root()) as rootfs:
            subprocess.run(["debootstrap", "--variant=minbase", f"--include={include}",
                            spec["suite"], rootfs, debs.mirrors()["debian"]],
                           check=True, stdout=subprocess.DEVNULL)
            # The build host's resolver and downloaded packages must not stay.
            for leftover in ("etc/resolv.conf", "etc/hostname"):
                Path(rootfs, leftover).unlink(missing_ok=True)
            for directory in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in Path(rootfs, directory).glob("*"):
                    if path.is_file():
                        path.unlink()
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "--numeric-owner", "-C", rootfs, "-cf", str(partial), "."],
                           check=True)
            partial.rename(tarball)
    docker("import", str(tarball), reference)
    return reference


def parent_reference(recipe: Recipe) -> str:
    return rootfs_image(recipe) if recipe.is_base else tag(recipe.parent)


def lock(recipe: Recipe) -> list[str]:
    """Re-resolve the recipe's Debian packages, jars and npm packages; returns what was
    written."""
    written = []
    wanted = list(recipe.spec.get("debs", []))
    upgrade = bool(recipe.spec.get("upgrade"))
    if wanted or upgrade:
        locked = debs.resolve(parent_reference(recipe), wanted, upgrade)
        debs.write_lock(recipe.debs_lock, locked)
        written.append(f"{recipe.debs_lock.relative_to(ROOT)} ({len(locked)} packages)")
    if recipe.pom:
        count = jars.lock(recipe.pom, recipe.jars_lock)
        written.append(f"{recipe.jars_lock.relative_to(ROOT)} ({count} jars)")
    if recipe.npm_packages:
        count = npm.lock(recipe.npm_packages, recipe.npm_lock)
        written.append(f"{recipe.npm_lock.relative_to(ROOT)} ({count} npm packages)")
    return written


def _changes(recipe: Recipe, parent: dict, key: str) -> list[str]:
    spec = recipe.spec
    env = dict(spec.get("env", {}))
    if recipe.wheels_lock and "PATH" not in env:
        parent_path = next((e.split("=", 1)[1] for e in parent.get("Env") or []
                            if e.startswith("PATH=")), DOCKER_DEFAULT_PATH)
        env["PATH"] = f"/opt/heliostat/venv/bin:{parent_path}"
    entrypoint = spec.get("entrypoint", parent.get("Entrypoint") or [])
    cmd = spec.get("cmd", parent.get("Cmd") or [])
    changes = [f"USER {spec.get('user') or parent.get('User') or 'root'}",
               f"WORKDIR {spec.get('workdir') or parent.get('WorkingDir') or '/'}",
               f"ENTRYPOINT {json.dumps(entrypoint)}", f"CMD {json.dumps(cmd)}"]
    changes += [f"ENV {name}={shlex.quote(str(value))}" for name, value in env.items()]
    labels = {"io.heliostat.image": recipe.name, "io.heliostat.version": platform_version(),
              LABEL_RECIPE: key}
    changes += [f"LABEL {name}={shlex.quote(value)}" for name, value in labels.items()]
    return changes


def _inputs(recipe: Recipe, directory: Path) -> list[str]:
    """Link the recipe's locked inputs under `directory`; returns the docker mount flags
    and the in-container settings lines."""
    mounts = []
    locked_debs = debs.parse_lock(recipe.debs_lock)
    if (recipe.spec.get("debs") or recipe.spec.get("upgrade")) and not recipe.debs_lock.exists():
        raise RuntimeError(f"{recipe.debs_lock.relative_to(ROOT)} is missing: run "
                           f"`python3 -m tools.images lock {recipe.name}`")
    (directory / "debs").mkdir(parents=True)
    debs.fetch(locked_debs, directory / "debs")
    mounts += ["-v", f"{directory / 'debs'}:/inputs/debs:ro"]
    if recipe.wheels_lock:
        mounts += ["-v", f"{wheels.fetch(recipe.wheels_lock)}:/inputs/wheels:ro",
                   "-v", f"{wheels.fetch_pip()}:/inputs/pip:ro"]
    if recipe.pom:
        jars.fetch(recipe.pom, recipe.jars_lock, directory / "jars")
        mounts += ["-v", f"{directory / 'jars'}:/inputs/jars:ro"]
    if recipe.npm_packages:
        locked_npm = npm.parse_lock(recipe.npm_lock)
        npm.check_lock(recipe.npm_packages, locked_npm, recipe.npm_lock.relative_to(ROOT))
        npm.fetch(locked_npm, directory / "npm")
        mounts += ["-v", f"{directory / 'npm'}:/inputs/npm:ro"]
    if recipe.go_module:
        mounts += ["-v", f"{go_binaries.fetch(recipe.spec['go'])}:/inputs/go:ro"]
    for source in recipe.sources:
        mounts += ["-v", f"{ROOT / source}:/src/{source}:ro"]
    return mounts


def _save(recipe: Recipe, container: str, changes: list[str]) -> str:
    """Commit the build container as the recipe's image. The base is flattened into one
    layer instead: its upgrade would otherwise store every updated file twice."""
    flags = [arg for change in changes for arg in ("--change", change)]
    if not recipe.is_base:
        return docker("commit", *flags, container, tag(recipe.name))
    export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
    try:
        imported = subprocess.run(["docker", "import", *flags, "-", tag(recipe.name)],
                                  stdin=export.stdout, capture_output=True, text=True,
                                  check=False)
    finally:
        export.stdout.close()
        export.wait()
    if export.returncode != 0 or imported.returncode != 0:
        raise RuntimeError(f"flattening the base failed: {imported.stderr.strip()[-2000:]}")
    return imported.stdout.strip()


def _set_stop_signal(image_id: str, signal: str, reference: str) -> str:
    """Docker 20.10's commit cannot set STOPSIGNAL; a one-line Dockerfile can, adding
    no layer (and needing no build context or network)."""
    result = subprocess.run(["docker", "build", "-q", "--network", "none", "-t", reference, "-"],
                            input=f"FROM {image_id}\nSTOPSIGNAL {signal}\n", text=True,
                            capture_output=True, check=False,
                            env={**os.environ, "DOCKER_BUILDKIT": "0"})
    if result.returncode != 0:
        raise RuntimeError(f"setting the stop signal failed: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip()


def build(recipe: Recipe) -> tuple[str, bool]:
    """Build the recipe's image unless its recipe key is unchanged.
    Returns (image id, whether it was built)."""
    parent_ref = parent_reference(recipe)
    parent = image_config(parent_ref)
    if parent is None:
        raise RuntimeError(f"parent image {parent_ref} of {recipe.name} is not built")
    key = recipe_key(recipe, parent["Id"] + (go_binaries.toolchain() if recipe.go_module else ""))
    current = image_config(tag(recipe.name))
    if current and (current.get("Labels") or {}).get(LABEL_RECIPE) == key:
        return current["Id"], False
    work = Path(tempfile.mkdtemp(prefix=f"build-{recipe.name}-", dir=inputs_cache.cache_root()))
    container = f"heliostat-build-{recipe.name}-{uuid.uuid4().hex[:8]}"
    try:
        mounts = _inputs(recipe, work / "inputs")
        settings = {"WHEELS_LOCK": recipe.spec.get("wheels", ""),
                    "APT_SOURCES": recipe.spec.get("apt_sources", "")}
        (work / "build").mkdir()
        (work / "build" / "settings").write_text(
            "".join(f"{k}={shlex.quote(v)}\n" for k, v in settings.items()))
        shutil.copy(TOOL_DIR / "build-in-container.sh", work / "build" / "build.sh")
        docker("run", "--name", container, "--network", "none", "-u", "0",
               "--entrypoint", "/bin/sh", "-v", f"{work / 'build'}:/build:ro",
               "-v", f"{recipe.directory}:/recipe:ro", *mounts, parent_ref, "/build/build.sh",
               capture=False)
        image_id = _save(recipe, container, _changes(recipe, parent, key))
        stop_signal = recipe.spec.get("stop_signal")
        if stop_signal:
            image_id = _set_stop_signal(image_id, stop_signal, tag(recipe.name))
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)
    if current and current["Id"] != image_id:
        # The superseded build is dead weight; it stays while a container still uses it.
        subprocess.run(["docker", "image", "rm", current["Id"]], capture_output=True, check=False)
    return image_id, True
