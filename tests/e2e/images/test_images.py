"""Every image the catalog names is built from its recipe, up to date, hermetic, and
starts its process; rebuilding unchanged recipes changes nothing."""

from __future__ import annotations

import subprocess
import sys

import docker
import pytest

from heliostat.bundle.catalog_images import catalog_images
from tools.images import builder
from tools.images.recipes import ROOT, build_order, discover, recipe_key

RECIPES = discover()


def test_every_catalog_image_has_a_recipe():
    assert set(catalog_images()) <= set(RECIPES)


def test_rebuilding_unchanged_recipes_keeps_every_image_id(docker_client):
    before = {name: docker_client.images.get(builder.tag(name)).id for name in RECIPES}
    result = subprocess.run([sys.executable, "-m", "tools.images", "build"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("up to date") == len(RECIPES)
    assert {name: docker_client.images.get(builder.tag(name)).id for name in RECIPES} == before


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_image_is_built_from_its_current_recipe(docker_client, name):
    recipe = RECIPES[name]
    image = docker_client.images.get(builder.tag(name))
    parent = builder.image_config(builder.parent_reference(recipe))
    extra = builder.go_binaries.toolchain() if recipe.go_module else ""
    assert image.labels["io.heliostat.recipe"] == recipe_key(recipe, parent["Id"] + extra)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_image_smoke_command(docker_client: docker.DockerClient, name):
    smoke = RECIPES[name].spec["smoke"]
    output = docker_client.containers.run(builder.tag(name), smoke["command"],
                                          network_mode="none", remove=True, stderr=True)
    assert smoke["expect"] in output.decode(errors="replace")


# Commander drives the engine through its socket and keeps the platform's ledger in a
# root-only state directory, both bind-mounted from the host (docs/commander.md).
RUNS_AS_ROOT = {"commander"}


@pytest.mark.parametrize("name", sorted(n for n in RECIPES if n != "base"))
def test_services_run_as_a_user_other_than_root(docker_client, name):
    uid = docker_client.containers.run(builder.tag(name), ["id", "-u"], network_mode="none",
                                       remove=True).decode().strip()
    assert (uid == "0") == (name in RUNS_AS_ROOT), uid


def test_images_hold_nothing_of_the_build(docker_client):
    script = ("ls /var/lib/apt/lists | grep -v -x -e lock -e partial -e auxfiles; "
              "ls /var/cache/apt/archives/*.deb 2>/dev/null; "
              "command -v gcc cc g++ clang; cat /etc/apt/sources.list; ls /etc/apt/sources.list.d")
    official = {"deb http://deb.debian.org/debian bookworm main",
                "deb http://deb.debian.org/debian bookworm-updates main",
                "deb http://deb.debian.org/debian-security bookworm-security main"}
    for recipe in build_order(RECIPES):
        output = docker_client.containers.run(
            builder.tag(recipe.name), ["-c", script], entrypoint="/bin/sh", user="0",
            network_mode="none", remove=True).decode()
        assert set(output.split("\n")) - {""} == official, (recipe.name, output)
