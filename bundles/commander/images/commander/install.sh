#!/bin/bash
# The installer package with its data (profiles, module catalog; not image recipes) in
# the layout the zipapp uses, so heliostat finds them the same way; Commander's own
# package beside it in the venv.
set -euo pipefail
site="$(/opt/heliostat/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp -r /src/installer/heliostat "$site/heliostat"
mkdir -p "$site/heliostat/_data"
cp -r /src/profiles "$site/heliostat/_data/profiles"
cp -r /src/bundles "$site/heliostat/_data/bundles"
find "$site/heliostat/_data/bundles" -mindepth 2 -maxdepth 2 -name images -prune -exec rm -rf {} +
cp -r /src/services/commander "$site/commander"
find "$site/heliostat" "$site/commander" -name __pycache__ -prune -exec rm -rf {} +
/opt/heliostat/venv/bin/python -m compileall -q "$site/heliostat" "$site/commander"
install -d -m 0755 /home/commander
