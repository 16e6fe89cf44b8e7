#!/usr/bin/env bash
# Prints the plain-HTTP Debian mirror the host's apt uses for the suite (containers cannot
# validate HTTPS, so an https mirror is given as http). HELIOSTAT_DEBIAN_MIRROR overrides.
set -euo pipefail
if [ -n "${HELIOSTAT_DEBIAN_MIRROR:-}" ]; then
  echo "$HELIOSTAT_DEBIAN_MIRROR"
  exit 0
fi
mirror="$(
  {
    # deb822 .sources files: a stanza's URIs line, then its Suites line.
    awk -v suite="$DEBIAN_SUITE" '
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uri ~ /\/debian\/?$/) print uri }
      /^$/ { uri = "" }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
    # one-line format: deb [options] URI SUITE COMPONENTS...
    sed -E 's/\[[^]]*\]//' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk -v suite="$DEBIAN_SUITE" '$1 == "deb" && $3 == suite && $2 ~ /\/debian\/?$/ { print $2 }' || true
  } | head -n 1
)"
mirror="${mirror:-http://deb.debian.org/debian}"
echo "${mirror/#https:/http:}"
