# Sourced by heliostat-entrypoint: the registry reads its HTTP secret (which signs upload
# state) only from its environment, so it is taken from the mounted file here.
if heliostat_starts docker-registry "$@" && [ -n "${REGISTRY_HTTP_SECRET_FILE:-}" ]; then
  REGISTRY_HTTP_SECRET="$(cat "$REGISTRY_HTTP_SECRET_FILE")"
  export REGISTRY_HTTP_SECRET
fi
# With Commander, the notifications carry a shared secret in a header. Distribution reads
# headers only from its config file (its environment overrides stop at lists), and the
# platform's config file must not hold a secret's value (it is part of the rendered
# manifests): so it holds a placeholder, replaced here in a private copy (mode 0600) that
# the registry reads instead. The command is `docker-registry serve CONFIG`.
if heliostat_starts docker-registry "$@" && [ -n "${REGISTRY_NOTIFICATIONS_SECRET_FILE:-}" ] \
    && [ "$#" -eq 3 ]; then
  private="$(mktemp "${TMPDIR:-/tmp}/registry-config.XXXXXX")"
  python3 - "$3" "$private" "$REGISTRY_NOTIFICATIONS_SECRET_FILE" <<'PYTHON'
import sys

source, target, secret_file = sys.argv[1:]
with open(secret_file, encoding="utf-8") as f:
    secret = f.read().strip()
with open(source, encoding="utf-8") as f:
    text = f.read()
with open(target, "w", encoding="utf-8") as f:
    f.write(text.replace("${REGISTRY_NOTIFICATIONS_SECRET}", secret))
PYTHON
  set -- "$1" "$2" "$private"
  unset private
fi
