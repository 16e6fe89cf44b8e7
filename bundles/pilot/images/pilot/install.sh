#!/bin/bash
# The pilot package (with its templates, static files and SQL migrations) goes into the
# venv beside its dependencies, compiled, without caches.
set -euo pipefail
site="$(/opt/heliostat/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp -r /src/webui/pilot "$site/pilot"
find "$site/pilot" -name __pycache__ -prune -exec rm -rf {} +
/opt/heliostat/venv/bin/python -m compileall -q "$site/pilot"
useradd --system --create-home --home-dir /home/pilot --shell /usr/sbin/nologin pilot
