#!/usr/bin/env bash
# The test bed's one provisioning entry point (`make testbed`): installs what is missing,
# starts what is stopped, builds what changed. Safe to run again at any time.
#
# Long-lived: dockerd. Per test session (started by tests/infra/fixtures.py from the artifacts
# prepared here): Postgres, Redis, Kafka, the SSH host containers, the registry and a
# Kubernetes control plane.
set -euo pipefail

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export INFRA
export CACHE="${HELIOSTAT_DEV_CACHE:-/var/cache/heliostat-dev}"
set -a
# shellcheck source=tests/infra/testbed.env
source "$INFRA/testbed.env"
set +a
# shellcheck source=tests/infra/steps/common.sh
source "$INFRA/steps/common.sh"

mkdir -p "$CACHE/logs"
# Two provisioning runs at once would race on the image tags and cache entries.
exec 9>"$CACHE/testbed.lock"
if ! flock -n 9; then
  echo "testbed: another provisioning run holds $CACHE/testbed.lock, waiting"
  flock 9
fi

total_start=$EPOCHREALTIME
run_step "apt packages" "$INFRA/steps/apt-packages.sh"
run_step "docker engine" "$INFRA/steps/docker-engine.sh"
run_step "base image" "$INFRA/steps/base-image.sh"
run_step "ssh keys" "$INFRA/steps/ssh-keys.sh"
run_step "sshd image" "$INFRA/steps/sshd-image.sh"
run_step "kafka jars" "$INFRA/steps/kafka-jars.sh"
run_step "postgres template" "$INFRA/steps/postgres-template.sh"
run_step "docker compose" "$INFRA/steps/docker-compose.sh"
run_step "kubernetes" "$INFRA/steps/kubernetes.sh"
echo "testbed: all steps ready ($(seconds_since "$total_start")s)"
