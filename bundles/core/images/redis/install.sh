#!/bin/sh
# redis-server as the redis user; the platform mounts /etc/redis/redis.conf (the Marathon
# profile writes it), data in the volume at /var/lib/redis.
set -eu
install -m 0640 -o redis -g redis /recipe/redis.conf /etc/redis/redis.conf
chown -R redis:redis /etc/redis /var/lib/redis
chmod 0750 /var/lib/redis
install -d -m 0755 /usr/local/lib/heliostat/redis
install -m 0644 /recipe/auth_conf.py /usr/local/lib/heliostat/redis/auth_conf.py
install -m 0644 /recipe/hook.sh /usr/local/lib/heliostat/entrypoint.d/50-redis.sh
