#!/usr/bin/env bash
# Debian packages the test bed runs on the host. Touches apt only when one is missing.
set -euo pipefail
source "$INFRA/steps/common.sh"

packages=(
  docker.io         # the engine (dockerd) and its CLI
  debootstrap       # builds the base image
  "postgresql-$POSTGRES_MAJOR"
  redis-server
  docker-registry   # private registry with webhook notifications
  openssh-client    # ssh-keygen for host and client keys; ssh-agent, scp for the SSH transport
  wrk               # HTTP load generator of bench/clickstream
  chromium          # the browser Playwright drives in the clickstream browser test
)
missing=()
# Maven (and the Java it brings) may come from elsewhere than apt; only the command matters.
command -v mvn >/dev/null || missing+=(maven)
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  note "all present"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
note "installed ${missing[*]}"
