# Sourced by heliostat-entrypoint: redis-server gets the password of its mounted secret
# through an include file, so it never shows on the command line.
if heliostat_starts redis-server "$@"; then
  redis_auth="$(python3 /usr/local/lib/heliostat/redis/auth_conf.py)"
  set -- "$@" --include "$redis_auth"
  unset redis_auth
fi
