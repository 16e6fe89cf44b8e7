#!/usr/bin/env bash
# `make demo`: install the embedded default platform on the local engine (or bring it up to
# date), then say how to reach it and give a write key and a curl that sends a first event.
set -euo pipefail
cd "$(dirname "$0")/.."
pyz=dist/heliostat.pyz
start=$(date +%s)

outcome=$(python3 "$pyz" upgrade --install --output json) || {
  echo "demo: the install failed (above); \`python3 $pyz history\` and \`python3 $pyz doctor\` say more" >&2
  exit 1
}
field() { python3 -c 'import json, sys; value = json.load(sys.stdin)
for key in sys.argv[1:]: value = value[key]
print(value)' "$@"; }
platform=$(field platform <<<"$outcome")
echo "demo: platform $platform is at revision $(field revision <<<"$outcome") ($(( $(date +%s) - start ))s)"

# A write key for the app `demo`, from the clickstream admin CLI in an Event API container.
admin() { docker exec "$platform-event-api-1" python3 -m clickstream admin "$@"; }
if ! created=$(admin app create demo --output json 2>/dev/null); then
  created=$(admin key add demo --output json)  # the app exists from an earlier demo
fi
write_key=$(field write_key <<<"$created")

pilot=$(field access urls pilot <<<"$outcome")
events=$(field access urls event-api <<<"$outcome")
password=$(field access logins pilot-admin-password file <<<"$outcome")
cat <<EOF

Pilot:     $pilot  (user admin; password: sudo cat $password)
Event API: $events  (app demo, write key $write_key)

Send a test event:
  curl -sS -u '$write_key:' -H 'Content-Type: application/json' \\
    -d '{"userId": "demo-user", "event": "Demo Event", "properties": {"from": "make demo"}}' \\
    ${events}track

Status and history: python3 $pyz status; python3 $pyz history
Remove it:          python3 $pyz uninstall --yes   (add --purge to drop its data too)
EOF
