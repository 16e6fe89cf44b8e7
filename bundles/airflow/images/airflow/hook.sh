# Sourced by heliostat-entrypoint before any command (airflow-migrate included).
#
# Points Airflow at its metadata database, Celery's result backend and its broker through
# Airflow's `*_cmd` options: Airflow runs airflow-url whenever it reads one, so the
# passwords go from their mounted files into Airflow's memory, never into the environment
# of a process or a log. The options go into airflow.cfg rather than the environment so
# that commands run with `docker exec` / `kubectl exec` (exec health probes included),
# which bypass this entrypoint, see them too. AIRFLOW__* variables still override them.

airflow_fail() {
  echo "airflow: $*" >&2
  exit 1
}

airflow_require() {
  for airflow_var in "$@"; do
    eval "airflow_value=\${$airflow_var:-}"
    [ -n "$airflow_value" ] || airflow_fail "$1 is set but $airflow_var is not"
  done
}

airflow_readable() {
  # $1 names a variable holding a file path; empty means "no such secret".
  eval "airflow_value=\${$1:-}"
  if [ -n "$airflow_value" ] && [ ! -r "$airflow_value" ]; then
    airflow_fail "$1 names $airflow_value, which user $(id -un) cannot read"
  fi
}

if [ -n "${POSTGRES_HOST:-}" ]; then
  airflow_require POSTGRES_HOST POSTGRES_DB POSTGRES_USER POSTGRES_PASSWORD_FILE
  airflow_readable POSTGRES_PASSWORD_FILE
fi
[ -z "${REDIS_URL:-}" ] || airflow_readable REDIS_PASSWORD_FILE

airflow_config="${AIRFLOW_CONFIG:-${AIRFLOW_HOME:-/opt/airflow}/airflow.cfg}"
airflow_url=/usr/local/lib/heliostat/airflow-url
if [ -n "${POSTGRES_HOST:-}${REDIS_URL:-}" ]; then
  {
    echo "# Written by the image's entrypoint at each start (hook.sh of the airflow image)."
    if [ -n "${POSTGRES_HOST:-}" ]; then
      echo "[database]"
      echo "sql_alchemy_conn_cmd = $airflow_url sql_alchemy_conn"
      echo "sql_alchemy_conn_async_cmd = $airflow_url sql_alchemy_conn_async"
    fi
    echo "[celery]"
    [ -z "${POSTGRES_HOST:-}" ] || echo "result_backend_cmd = $airflow_url result_backend"
    [ -z "${REDIS_URL:-}" ] || echo "broker_url_cmd = $airflow_url broker_url"
  } > "$airflow_config.partial" || airflow_fail "cannot write $airflow_config.partial"
  mv -f "$airflow_config.partial" "$airflow_config" || airflow_fail "cannot replace $airflow_config"
fi

unset airflow_config airflow_url airflow_var airflow_value
unset -f airflow_fail airflow_require airflow_readable
