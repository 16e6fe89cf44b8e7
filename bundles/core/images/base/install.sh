#!/bin/sh
# The shared entrypoint and the folder each image adds its start-up hook to.
set -eu
install -d -m 0755 /usr/local/lib/heliostat/entrypoint.d
install -m 0755 /recipe/entrypoint /usr/local/bin/heliostat-entrypoint
install -m 0644 /recipe/write_files.py /usr/local/lib/heliostat/write_files.py
