#!/bin/bash
# The Airflow module's migration job: brings the metadata database (Airflow's tables and
# the FAB auth manager's) to this release, then makes sure the first admin user exists.
# An existing admin keeps the password it has; the generated one only seeds it.
set -euo pipefail

airflow db migrate

if [ -z "${AIRFLOW_ADMIN_PASSWORD_FILE:-}" ]; then
  exit 0
fi
password="$(head -n 1 "$AIRFLOW_ADMIN_PASSWORD_FILE")"
if [ -z "$password" ]; then
  echo "airflow-migrate: $AIRFLOW_ADMIN_PASSWORD_FILE is empty" >&2
  exit 1
fi
username="${AIRFLOW_ADMIN_USERNAME:-admin}"
# `users create` reads the password twice from standard input when it has no terminal
# (setsid detaches it from any), so the password is never in an argument list.
printf '%s\n%s\n' "$password" "$password" | setsid --wait airflow users create --role Admin \
  --username "$username" --email "${AIRFLOW_ADMIN_EMAIL:-$username@localhost}" \
  --firstname Airflow --lastname Admin
