#!/bin/bash
# The clickstream package goes into the venv beside its dependencies, without caches.
set -euo pipefail
site="$(/opt/heliostat/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp -r /src/services/clickstream "$site/clickstream"
find "$site/clickstream" -name __pycache__ -prune -exec rm -rf {} +
/opt/heliostat/venv/bin/python -m compileall -q "$site/clickstream"
useradd --system --create-home --home-dir /home/clickstream --shell /usr/sbin/nologin clickstream
