#!/bin/bash
set -euo pipefail
install -m 0755 /inputs/go/statsd_exporter /usr/local/bin/statsd_exporter
