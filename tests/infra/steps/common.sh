# Shared by provision.sh and its steps: timing, step logs, and small docker helpers.

seconds_since() {
  awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# run_step NAME SCRIPT: runs one step with its output in a log file, then prints one line
# with the step's duration and what it did (the step writes that note with `note`).
run_step() {
  local name="$1" script="$2" start=$EPOCHREALTIME
  local log="$CACHE/logs/${name// /-}.log"
  STEP_NOTE="$(mktemp)"
  export STEP_NOTE
  # 9>&-: provision.sh's lock must not be inherited by daemons a step starts (dockerd).
  if ! bash "$script" >"$log" 2>&1 9>&-; then
    echo "testbed: $name FAILED after $(seconds_since "$start")s; last lines of $log:" >&2
    tail -n 30 "$log" | sed 's/^/  | /' >&2
    rm -f "$STEP_NOTE"
    exit 1
  fi
  local detail
  detail="$(paste -sd ';' "$STEP_NOTE" | sed 's/;/; /g')"
  rm -f "$STEP_NOTE"
  echo "testbed: $name ready ($(seconds_since "$start")s)${detail:+ - $detail}"
}

note() {
  echo "$*" >>"$STEP_NOTE"
}

docker_answers() {
  timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# The label a step stamped on an image, or nothing when the image is absent.
image_label() {
  docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

sha12() {
  sha256sum | cut -c1-12
}
