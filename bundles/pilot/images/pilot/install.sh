#!/bin/bash
# The pilot package (with its templates, static files and SQL migrations) goes into the
# venv beside its dependencies, compiled, without caches; so does the clickstream package,
# whose storage functions Pilot uses for apps, write keys and destinations, and whose replay
# of dead letters it runs (its processes do not run here).
set -euo pipefail
site="$(/opt/heliostat/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp -r /src/webui/pilot "$site/pilot"
cp -r /src/services/clickstream "$site/clickstream"
find "$site/pilot" "$site/clickstream" -name __pycache__ -prune -exec rm -rf {} +
# uPlot's browser build for the charts; the page loads it from Pilot, never a CDN.
install -d -m 0755 "$site/pilot/static/vendor/uplot"
install -m 0644 /tmp/npm/uplot/dist/uPlot.iife.min.js /tmp/npm/uplot/dist/uPlot.min.css \
  /tmp/npm/uplot/LICENSE "$site/pilot/static/vendor/uplot/"
/opt/heliostat/venv/bin/python -m compileall -q "$site/pilot" "$site/clickstream"
useradd --system --create-home --home-dir /home/pilot --shell /usr/sbin/nologin pilot
