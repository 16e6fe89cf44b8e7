#!/bin/sh
# Debian's Alertmanager as the prometheus user, under the name the platform runs it by.
set -eu
ln -s /usr/bin/prometheus-alertmanager /usr/local/bin/alertmanager
# The platform mounts (Marathon: writes, as prometheus) /etc/alertmanager/alertmanager.yml.
install -d -o prometheus -g prometheus -m 0755 /etc/alertmanager
install -m 0644 -o prometheus -g prometheus /recipe/alertmanager.yml \
  /etc/alertmanager/alertmanager.yml
