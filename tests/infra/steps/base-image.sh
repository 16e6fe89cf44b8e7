#!/usr/bin/env bash
# heliostat/base:bookworm: debootstrap (minbase + python3) imported into Docker. Rebuilt only
# when its recipe (this script, suite, mirror, packages) changes; the rootfs tarball is cached.
set -euo pipefail
source "$INFRA/steps/common.sh"

include=python3
mirror="$(bash "$INFRA/steps/debian-mirror.sh")"
recipe="$( { cat "$0"; echo "$DEBIAN_SUITE $mirror $include"; } | sha12)"
tarball="$CACHE/base-$DEBIAN_SUITE-$recipe.tar"

if [ "$(image_label "$BASE_IMAGE" heliostat.recipe)" = "$recipe" ]; then
  note "image up to date (recipe $recipe)"
  exit 0
fi
if [ ! -f "$tarball" ]; then
  rootfs="$(mktemp -d "$CACHE/debootstrap.XXXXXX")"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include="$include" "$DEBIAN_SUITE" "$rootfs" "$mirror"
  # Downloaded .debs and index files only make the image bigger.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  find "$CACHE" -maxdepth 1 -name "base-$DEBIAN_SUITE-*.tar" ! -name "$(basename "$tarball")" -delete
  note "debootstrapped from $mirror"
fi
docker import \
  --change "LABEL heliostat.recipe=$recipe" \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  "$tarball" "$BASE_IMAGE" >/dev/null
note "imported $BASE_IMAGE (recipe $recipe)"
