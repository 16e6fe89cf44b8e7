#!/bin/sh
# Debian's Docker registry (distribution 2.8) as the docker-registry user; images in the
# volume at /var/lib/registry.
set -eu
install -m 0644 /recipe/config.yml /etc/docker/registry/config.yml
# The Marathon profile writes config.yml at start, as docker-registry.
chown docker-registry:docker-registry /etc/docker/registry /etc/docker/registry/config.yml
install -d -o docker-registry -g docker-registry -m 0750 /var/lib/registry
install -m 0644 /recipe/hook.sh /usr/local/lib/heliostat/entrypoint.d/50-registry.sh
