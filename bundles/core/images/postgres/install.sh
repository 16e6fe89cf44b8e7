#!/bin/sh
# PostgreSQL 15 as the postgres user, its data in the volume at /var/lib/postgresql/data.
set -eu
# The package's own cluster would only be dead weight: the entrypoint makes one in $PGDATA.
if [ -d /etc/postgresql/15/main ]; then
  pg_dropcluster 15 main
fi
install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
install -d -o postgres -g postgres -m 2775 /var/run/postgresql
install -d -m 0755 /usr/local/lib/heliostat/postgres
install -m 0755 /recipe/prepare.sh /usr/local/lib/heliostat/postgres/prepare.sh
install -m 0644 /recipe/module_databases.py /usr/local/lib/heliostat/postgres/module_databases.py
install -m 0644 /recipe/hook.sh /usr/local/lib/heliostat/entrypoint.d/50-postgres.sh
install -m 0755 /recipe/backup.sh /usr/local/bin/heliostat-postgres-backup
