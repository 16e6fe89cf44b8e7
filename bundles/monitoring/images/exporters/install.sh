#!/bin/sh
# The exporters as the prometheus user (the packages create it); the redis exporter behind
# a wrapper that reads its password file.
set -eu
install -m 0755 /recipe/redis-exporter.sh /usr/local/bin/heliostat-redis-exporter
