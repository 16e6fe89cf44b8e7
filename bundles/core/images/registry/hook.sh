# Sourced by heliostat-entrypoint: the registry reads its HTTP secret (which signs upload
# state) only from its environment, so it is taken from the mounted file here.
if heliostat_starts docker-registry "$@" && [ -n "${REGISTRY_HTTP_SECRET_FILE:-}" ]; then
  REGISTRY_HTTP_SECRET="$(cat "$REGISTRY_HTTP_SECRET_FILE")"
  export REGISTRY_HTTP_SECRET
fi
