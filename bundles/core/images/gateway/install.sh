#!/bin/sh
# nginx as www-data: the configuration the platform gives listens on 8080 and keeps its
# pid in /tmp, so the master process needs no root; its temporary files go to
# /var/lib/nginx, which www-data owns.
set -eu
rm -f /etc/nginx/sites-enabled/default
install -m 0644 /recipe/nginx.conf /etc/nginx/nginx.conf
# The Marathon profile writes nginx.conf at start, as www-data.
chown www-data:www-data /etc/nginx /etc/nginx/nginx.conf
for temp in body proxy fastcgi uwsgi scgi; do
  install -d -o www-data -g www-data -m 0700 "/var/lib/nginx/$temp"
done
chown www-data:www-data /var/lib/nginx /var/log/nginx
ln -sf /dev/stdout /var/log/nginx/access.log
ln -sf /dev/stderr /var/log/nginx/error.log
