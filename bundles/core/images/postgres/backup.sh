#!/bin/sh
# heliostat-postgres-backup dump|restore: the postgres service's `backup:` commands.
#   dump     every database but `postgres` and the templates, as plain SQL on stdout
#            (pg_dump --create, one after the other)
#   restore  drop those databases (closing their connections), run the SQL from stdin,
#            then let module_databases.py put back each module's current password
# Roles are not dumped: the entrypoint makes them from the platform's config and secrets,
# so a restore never brings back an old password.
set -eu
export PGHOST="${PGHOST:-/var/run/postgresql}" PGUSER=postgres

databases() {
  psql -X -A -t -q -d postgres -v ON_ERROR_STOP=1 \
    -c "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1"
}

case "${1:-}" in
  dump)
    echo "-- heliostat postgres backup, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(postgres --version)"
    for database in $(databases); do
      pg_dump --create --no-password -d "$database"
    done
    ;;
  restore)
    for database in $(databases); do
      echo 'DROP DATABASE :"db" WITH (FORCE);' | psql -X -q -d postgres -v ON_ERROR_STOP=1 -v db="$database"
      echo "heliostat-postgres-backup: dropped $database" >&2
    done
    psql -X -q -d postgres -v ON_ERROR_STOP=1 >/dev/null
    python3 /usr/local/lib/heliostat/postgres/module_databases.py
    echo "heliostat-postgres-backup: restored $(databases | tr '\n' ' ')" >&2
    ;;
  *)
    echo "usage: heliostat-postgres-backup dump|restore" >&2
    exit 2
    ;;
esac
