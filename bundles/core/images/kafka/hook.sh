# Sourced by heliostat-entrypoint: before the broker starts with the generated
# configuration, write it from the environment and format the storage on first start.
if heliostat_starts kafka-server-start "$@" && [ "$#" -eq 1 ]; then
  if ! mkdir -p /var/lib/kafka/data 2>/dev/null || [ ! -w /var/lib/kafka/data ]; then
    echo "kafka: /var/lib/kafka is not writable by $(id -un) (uid $(id -u)); the volume" \
      "must be owned by that user" >&2
    exit 1
  fi
  kafka_cluster_id="$(python3 /usr/local/lib/heliostat/kafka/kafka_config.py /etc/kafka/server.properties)"
  if [ ! -f /var/lib/kafka/data/meta.properties ]; then
    kafka-storage format --ignore-formatted --cluster-id "$kafka_cluster_id" \
      --config /etc/kafka/server.properties
  fi
  unset kafka_cluster_id
fi
