#!/bin/sh
# Before postgres starts: create the cluster in $PGDATA on first start, then, on every
# start, make sure each module's database and user exist with their current passwords.
# That is done on a server listening only on a private socket, so no client sees a
# half-prepared database.
set -eu
: "${PGDATA:?PGDATA is not set}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if ! mkdir -p "$PGDATA" 2>/dev/null || [ ! -w "$PGDATA" ]; then
    echo "postgres: $PGDATA is not writable by $(id -un) (uid $(id -u)); the volume must be" \
      "owned by that user" >&2
    exit 1
  fi
  chmod 0700 "$PGDATA"
  initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
    --data-checksums --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  # Clients come from the platform's network; every connection but the local superuser's
  # needs a password.
  cat > "$PGDATA/pg_hba.conf" <<'HBA'
local all postgres peer
local all all scram-sha-256
host all all 0.0.0.0/0 scram-sha-256
host all all ::/0 scram-sha-256
HBA
  cat >> "$PGDATA/postgresql.conf" <<'CONF'
listen_addresses = '*'
password_encryption = scram-sha-256
CONF
  echo "postgres: created the cluster in $PGDATA" >&2
fi

socket="$(mktemp -d)"
pg_ctl --pgdata="$PGDATA" --wait --silent --log="$socket/log" \
  -o "-c listen_addresses='' -c unix_socket_directories='$socket'" start || {
  cat "$socket/log" >&2
  exit 1
}
status=0
PGHOST="$socket" python3 /usr/local/lib/heliostat/postgres/module_databases.py || status=$?
pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
rm -rf "$socket"
exit "$status"
