#!/usr/bin/env bash
# Docker Compose v2 as a docker CLI plugin, built once per version from the Go module proxy.
set -euo pipefail
source "$INFRA/steps/common.sh"

directory="$CACHE/docker-compose-$COMPOSE_VERSION"
binary="$directory/docker-compose"
if [ ! -x "$binary" ]; then
  export GOPATH="$CACHE/go" GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" GOFLAGS=-mod=mod
  mkdir -p "$directory"
  GOBIN="$directory" go install \
    -ldflags "-X github.com/docker/compose/v2/internal.Version=v$COMPOSE_VERSION" \
    "github.com/docker/compose/v2/cmd@v$COMPOSE_VERSION"
  mv "$directory/cmd" "$binary"
  note "built $COMPOSE_VERSION"
else
  note "cached ($COMPOSE_VERSION)"
fi
mkdir -p /usr/local/lib/docker/cli-plugins
ln -sfn "$binary" /usr/local/lib/docker/cli-plugins/docker-compose
