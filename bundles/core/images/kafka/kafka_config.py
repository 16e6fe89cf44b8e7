"""Writes the broker's server.properties from the environment and prints the cluster id.

Every replica is a KRaft broker and controller. Its node id is REPLICA_INDEX, its
advertised host KAFKA_ADVERTISED_HOST_PATTERN with {index} filled in. All replicas must
format their storage with the same cluster id: KAFKA_CLUSTER_ID when set, otherwise one
derived from the host pattern, which every replica of a platform shares and which does
not change when the platform is scaled.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import sys

CLIENT_PORT, CONTROLLER_PORT = 9092, 9093
LOG_DIR = "/var/lib/kafka/data"
CLUSTER_ID = re.compile(r"[A-Za-z0-9_-]{22}")
VOTER = re.compile(r"(\d+)@([^:@,\s]+):(\d+)")


class ConfigError(ValueError):
    pass


def _int(env: dict[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{name} must be an integer of at least {minimum}, not {raw!r}")
    return int(raw)


def voter_ids(voters: str) -> list[int]:
    """The node ids of `id@host:port,...`, each entry checked."""
    ids = []
    for voter in voters.split(","):
        match = VOTER.fullmatch(voter.strip())
        if not match:
            raise ConfigError(f"KAFKA_CONTROLLER_QUORUM_VOTERS: {voter!r} is not id@host:port")
        ids.append(int(match[1]))
    return ids


def derived_cluster_id(seed: str) -> str:
    """A Kafka cluster id (16 bytes, base64url without padding) that only `seed` decides."""
    digest = hashlib.sha256(b"heliostat-kafka\0" + seed.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def settings(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """(server.properties as a dict, cluster id) for this replica."""
    node = _int(env, "REPLICA_INDEX", 0, 0)
    pattern = env.get("KAFKA_ADVERTISED_HOST_PATTERN", "").strip() or socket.gethostname()
    host = pattern.replace("{index}", str(node))
    voters = (env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").strip()
              or f"{node}@{host}:{CONTROLLER_PORT}")
    if node not in voter_ids(voters):
        raise ConfigError(f"node {node} (REPLICA_INDEX) is not among the controller voters "
                          f"{voters}")
    replication = _int(env, "KAFKA_DEFAULT_REPLICATION_FACTOR", 1, 1)
    min_insync = _int(env, "KAFKA_MIN_INSYNC_REPLICAS", 1, 1)
    if min_insync > replication:
        raise ConfigError(f"KAFKA_MIN_INSYNC_REPLICAS ({min_insync}) is more than "
                          f"KAFKA_DEFAULT_REPLICATION_FACTOR ({replication})")
    cluster_id = env.get("KAFKA_CLUSTER_ID", "").strip()
    if cluster_id and not CLUSTER_ID.fullmatch(cluster_id):
        raise ConfigError("KAFKA_CLUSTER_ID must be 22 characters of base64url "
                          "(as `kafka-storage random-uuid` prints)")
    cluster_id = cluster_id or derived_cluster_id(pattern)
    properties = {
        "process.roles": "broker,controller",
        "node.id": str(node),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://:{CLIENT_PORT},CONTROLLER://:{CONTROLLER_PORT}",
        "advertised.listeners": f"PLAINTEXT://{host}:{CLIENT_PORT}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": LOG_DIR,
        "default.replication.factor": str(replication),
        "offsets.topic.replication.factor": str(replication),
        "transaction.state.log.replication.factor": str(replication),
        "min.insync.replicas": str(min_insync),
        "transaction.state.log.min.isr": str(min_insync),
    }
    return properties, cluster_id


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: kafka_config.py SERVER_PROPERTIES", file=sys.stderr)
        return 2
    try:
        properties, cluster_id = settings(dict(os.environ))
    except ConfigError as e:
        print(f"kafka: {e}", file=sys.stderr)
        return 1
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write("# Written at start by the image's entrypoint from the environment.\n")
        f.writelines(f"{key}={value}\n" for key, value in properties.items())
    print(cluster_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
