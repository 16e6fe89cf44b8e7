#!/usr/bin/env bash
# heliostat/testbed-sshd:bookworm: the base image plus Debian's openssh-server (installed from the
# plain-HTTP mirror inside the build) and the Docker CLI taken from Debian's docker.io package,
# so the SSH host with the engine's socket mounted is a Docker host reachable only over SSH.
set -euo pipefail
source "$INFRA/steps/common.sh"

recipe_dir="$INFRA/images/sshd"
docker_version="$(dpkg-query -W -f '${Version}' docker.io)"
debs="$CACHE/debs"
mkdir -p "$debs"
cached_deb() {
  local f
  for f in "$debs"/docker.io_*.deb; do
    if [ -f "$f" ] && [ "$(dpkg-deb -f "$f" Version)" = "$docker_version" ]; then
      echo "$f"
      return
    fi
  done
}
deb="$(cached_deb)"
if [ -z "$deb" ]; then
  (cd "$debs" && apt-get download "docker.io=$docker_version")
  deb="$(cached_deb)"
  note "downloaded docker.io $docker_version"
fi
base_id="$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")"
recipe="$( { cat "$0" "$recipe_dir"/*; echo "$docker_version $base_id"; } | sha12)"

if [ "$(image_label "$SSHD_IMAGE" heliostat.recipe)" = "$recipe" ]; then
  note "image up to date (recipe $recipe)"
  exit 0
fi
previous="$(docker image inspect --format '{{.Id}}' "$SSHD_IMAGE" 2>/dev/null || true)"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$recipe_dir"/* "$context/"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$context" --strip-components=3 ./usr/bin/docker
# The classic builder needs nothing beyond the engine; BuildKit may not be installed.
DOCKER_BUILDKIT=0 docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" --label "heliostat.recipe=$recipe" -t "$SSHD_IMAGE" "$context"
note "built $SSHD_IMAGE (recipe $recipe)"
# The superseded build is only dead weight; it stays if a container still uses it.
if [ -n "$previous" ]; then
  docker image rm "$previous" >/dev/null 2>&1 || true
fi
