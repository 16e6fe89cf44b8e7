#!/usr/bin/env bash
# An initdb'd Postgres cluster kept as a template: each test session copies it and starts its own
# postmaster on a free loopback port, which takes a second instead of an initdb.
set -euo pipefail
source "$INFRA/steps/common.sh"

bin="/usr/lib/postgresql/$POSTGRES_MAJOR/bin"
home="$CACHE/postgres-$POSTGRES_MAJOR"
stamp="$("$bin/postgres" --version) $( { cat "$0"; echo "$POSTGRES_PASSWORD"; } | sha12)"
if [ -f "$home/template/PG_VERSION" ] && [ "$(cat "$home/template.stamp" 2>/dev/null)" = "$stamp" ]; then
  note "cached ($stamp)"
  exit 0
fi
mkdir -p "$home"
chown postgres: "$home"
rm -rf "$home/template.partial"
password_file="$(mktemp)"
trap 'rm -f "$password_file"' EXIT
printf '%s\n' "$POSTGRES_PASSWORD" >"$password_file"
chown postgres "$password_file"
runuser -u postgres -- "$bin/initdb" --pgdata="$home/template.partial" --username=postgres \
  --pwfile="$password_file" --auth-local=trust --auth-host=scram-sha-256 \
  --encoding=UTF8 --locale=C.UTF-8 --no-sync
rm -rf "$home/template"
mv "$home/template.partial" "$home/template"
echo "$stamp" >"$home/template.stamp"
note "initdb done ($stamp)"
