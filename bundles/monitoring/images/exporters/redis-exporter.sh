#!/bin/sh
# Debian's redis exporter reads a password from REDIS_PASSWORD or a JSON map of addresses
# to passwords; the platform mounts the password as a plain file: hand it over in the
# process's environment, never on the command line.
set -eu
if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
  REDIS_PASSWORD=$(cat "$REDIS_PASSWORD_FILE")
  export REDIS_PASSWORD
fi
exec prometheus-redis-exporter "$@"
