#!/bin/sh
# Debian's Prometheus as the prometheus user; its TSDB in the volume at /var/lib/prometheus.
set -eu
install -m 0644 /recipe/prometheus.yml /etc/prometheus/prometheus.yml
# The Marathon profile writes prometheus.yml and rules.yml at start, as prometheus.
chown prometheus:prometheus /etc/prometheus /etc/prometheus/prometheus.yml
rm -rf /var/lib/prometheus/metrics2
chown prometheus:prometheus /var/lib/prometheus
chmod 0750 /var/lib/prometheus
