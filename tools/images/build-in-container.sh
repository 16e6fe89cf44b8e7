#!/bin/sh
# Runs as root inside the build container (network: none). Installs the mounted inputs,
# runs the recipe's install.sh, then removes everything that should not be in an image.
# Settings come from a mounted file, not the environment, so none is committed with the image.
set -eu
. /build/settings
export DEBIAN_FRONTEND=noninteractive

if [ -n "${APT_SOURCES:-}" ]; then
  printf '%s' "$APT_SOURCES" > /etc/apt/sources.list
  rm -f /etc/apt/sources.list.d/*
fi
if ls /inputs/debs/*.deb >/dev/null 2>&1; then
  # Local files only: no lists, no network; apt orders them and checks dependencies.
  apt-get install -y -q --no-install-recommends \
    -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/dev/null \
    -o Dpkg::Options::=--force-confold /inputs/debs/*.deb
fi
if [ -n "${WHEELS_LOCK:-}" ]; then
  python3 -m venv --without-pip /opt/heliostat/venv
  pip_wheel="$(ls /inputs/pip/pip-*.whl)"
  /opt/heliostat/venv/bin/python "$pip_wheel/pip" install --quiet --no-index \
    --disable-pip-version-check --no-cache-dir --find-links /inputs/wheels --require-hashes \
    --no-deps -r "/recipe/$WHEELS_LOCK"
fi
if [ -d /inputs/npm ]; then
  # Each tarball into /tmp/npm/<name>/ (its top folder, `package/`, dropped), for
  # install.sh to copy from; the owner and modes in the tarball are not kept.
  (cd /inputs/npm && find . -name '*.tgz' | sort) | while read -r tarball; do
    name="${tarball#./}"
    name="${name%.tgz}"
    mkdir -p "/tmp/npm/$name"
    tar -xzf "/inputs/npm/$tarball" -C "/tmp/npm/$name" --strip-components=1 \
      --no-same-owner --no-same-permissions
  done
fi
if [ -f /recipe/install.sh ]; then
  bash /recipe/install.sh
fi

# Nothing of the build stays: package caches and lists, logs, compilers.
for compiler in gcc cc c++ g++ clang; do
  if command -v "$compiler" >/dev/null 2>&1; then
    echo "build: $compiler is installed; images carry no compilers" >&2
    exit 1
  fi
done
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
  /var/lib/dpkg/*-old /var/log/apt /var/log/dpkg.log /var/log/alternatives.log \
  /root/.cache /tmp/* /var/tmp/*
