#!/usr/bin/env bash
# SSH keys of the test bed: one client key, and one host key per SSH host, made once and kept
# so that known_hosts stays valid between runs.
set -euo pipefail
source "$INFRA/steps/common.sh"

dir="$CACHE/ssh"
mkdir -p "$dir/client" "$dir/hosts/plain" "$dir/hosts/docker"
chmod 700 "$dir"
made=()
make_key() {
  if [ ! -f "$1" ]; then
    ssh-keygen -q -t ed25519 -N '' -C "$2" -f "$1"
    made+=("$2")
  fi
}
make_key "$dir/client/id_ed25519" heliostat-testbed-client
make_key "$dir/hosts/plain/ssh_host_ed25519_key" heliostat-testbed-plain
make_key "$dir/hosts/docker/ssh_host_ed25519_key" heliostat-testbed-docker
cp "$dir/client/id_ed25519.pub" "$dir/client/authorized_keys"
chmod 600 "$dir"/client/id_ed25519 "$dir"/hosts/*/ssh_host_ed25519_key
note "${made[*]:-keys present}"
