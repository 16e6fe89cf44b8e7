#!/usr/bin/env bash
# Docker Engine: reuse a dockerd that answers, otherwise start one (no systemd here) and wait.
set -euo pipefail
source "$INFRA/steps/common.sh"

if docker_answers; then
  note "already running"
  exit 0
fi
if ! pgrep -x dockerd >/dev/null; then
  # A dockerd that died uncleanly leaves its pid file behind, which blocks the next start.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  setsid dockerd >>/var/log/heliostat-dockerd.log 2>&1 </dev/null &
  note "started (log: /var/log/heliostat-dockerd.log)"
else
  note "waited for a starting dockerd"
fi
for _ in $(seq 1 120); do
  if docker_answers; then
    exit 0
  fi
  sleep 0.5
done
echo "dockerd did not answer within 60s; see /var/log/heliostat-dockerd.log" >&2
tail -n 20 /var/log/heliostat-dockerd.log >&2 || true
exit 1
