#!/bin/bash
# Runs as root in the build container, after the builder installed the locked wheels into
# /opt/heliostat/venv: the user Airflow runs as, its home, the entrypoint hook and helpers.
set -euo pipefail

# A fixed uid/gid (Airflow's usual 50000) so that volumes keep their owner across images.
groupadd --gid 50000 airflow
useradd --uid 50000 --gid airflow --home-dir /opt/airflow --no-create-home \
  --shell /usr/sbin/nologin airflow
# A fresh named volume takes the owner of the directory it is mounted on.
install -d -o airflow -g airflow -m 0755 /opt/airflow /opt/airflow/logs /opt/airflow/dags

# On PATH even for commands started with a minimal environment.
ln -s /opt/heliostat/venv/bin/airflow /usr/local/bin/airflow

install -d /usr/local/lib/heliostat/entrypoint.d
install -m 0644 /recipe/hook.sh /usr/local/lib/heliostat/entrypoint.d/50-airflow.sh
# Debian's python3 (its shebang): the URLs need the standard library only.
install -m 0755 /recipe/airflow-url.py /usr/local/lib/heliostat/airflow-url
install -m 0755 /recipe/airflow-migrate.sh /usr/local/bin/airflow-migrate
install -m 0755 /recipe/airflow-log-rotation.py /usr/local/bin/airflow-log-rotation
# The clickstream package beside Airflow in the venv (its processes do not run here): the
# warehouse batch DAG loads with it.
site="$(/opt/heliostat/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp -r /src/services/clickstream "$site/clickstream"
find "$site/clickstream" -name __pycache__ -prune -exec rm -rf {} +
/opt/heliostat/venv/bin/python -m compileall -q "$site/clickstream"

# The DAGs that ship with the platform: a DAG bundle of their own, beside the user's
# dags folder (which an image built on this one, or a host folder, fills).
install -d -m 0755 /opt/heliostat/dags
install -m 0644 /recipe/dags/*.py /opt/heliostat/dags/

# Fail the build, not the first start, if the venv cannot run Airflow (in a throwaway
# AIRFLOW_HOME: Airflow writes a default configuration where it finds none).
check_home="$(mktemp -d)"
AIRFLOW_HOME="$check_home" /opt/heliostat/venv/bin/python -c \
  'import airflow.providers.celery, airflow.providers.fab, airflow.providers.postgres, flower, psycopg2, redis, statsd, clickstream.batch_load'
rm -rf "$check_home"
