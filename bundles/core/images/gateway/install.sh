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
# The tracker, as the loader asks its CDN for it: the loader at
# /analytics.js/v1/<write key>/analytics.min.js (the same file for every key) and its
# content-hashed chunks under /analytics-next/bundles/; nginx sends the .gz beside each
# file to browsers that accept it. Only the browser build: not the package's npm
# builds, types or source maps.
umd=/tmp/npm/@segment/analytics-next/dist/umd
tracker=/usr/share/heliostat/tracker
install -d -m 0755 "$tracker/analytics.js" "$tracker/analytics-next/bundles"
install -m 0644 "$umd/standalone.js" "$tracker/analytics.js/analytics.min.js"
install -m 0644 "$umd/standalone.js.gz" "$tracker/analytics.js/analytics.min.js.gz"
for chunk in "$umd"/*.bundle.*.js "$umd"/*.bundle.*.js.gz; do
  install -m 0644 "$chunk" "$tracker/analytics-next/bundles/"
done
