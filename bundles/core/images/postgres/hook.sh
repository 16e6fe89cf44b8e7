# Sourced by heliostat-entrypoint: prepares the cluster before postgres itself starts.
if heliostat_starts postgres "$@"; then
  /usr/local/lib/heliostat/postgres/prepare.sh
fi
