"""Where the shared stores are, for the modules that use them.

An internal store runs inside the platform (its host name comes from the profile's
naming); an external one is where `stores.<store>` in platform.yaml says. Either way a
module sees the same shape, so module.yaml never has to care which.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

STORES = ("postgres", "redis", "kafka")
POSTGRES_PORT, REDIS_PORT, KAFKA_PORT = 5432, 6379, 9092

HostName = Callable[..., str]


def resolve_stores(values: dict[str, Any], users: dict[str, list[str]],
                   host: HostName) -> dict[str, Any]:
    """The `stores` seen by module templates. `users` maps a store to the modules using it."""
    stores = values["stores"]
    return {
        "postgres": _postgres(stores["postgres"], users.get("postgres", []), host),
        "redis": _redis(stores["redis"], host),
        "kafka": _kafka(stores["kafka"], host),
    }


def store_secrets(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Secrets the stores need: generated ones for internal stores, files for external."""
    secrets: dict[str, dict[str, Any]] = {}
    postgres = resolved["postgres"]
    if postgres["internal"]:
        secrets["postgres-superuser"] = {"generate": "password",
                                         "description": "Superuser of the internal Postgres."}
        for module, access in postgres["db"].items():
            secrets[access["secret"]] = {"generate": "password",
                                         "description": f"Postgres password of {module}."}
    else:
        secrets["postgres-external"] = {"from_file": postgres["password_file"],
                                        "description": "Password of the external Postgres."}
    redis = resolved["redis"]
    if redis["secret"]:
        secrets[redis["secret"]] = (
            {"generate": "password", "description": "Password of the internal Redis."}
            if redis["internal"] else
            {"from_file": redis["password_file"], "description": "Password of the external Redis."})
    return secrets


def _postgres(config: dict[str, Any], users: list[str], host: HostName) -> dict[str, Any]:
    if config["mode"] == "internal":
        db = {m: {"database": m, "user": m, "secret": f"postgres-{m}"} for m in users}
        return {"internal": True, "host": host("postgres"), "port": POSTGRES_PORT,
                "sslmode": "disable", "db": db, "storage": config["storage"]}
    # One external database for everything; each module keeps to its own schema in it.
    db = {m: {"database": config["database"], "user": config["user"],
              "secret": "postgres-external"} for m in users}
    return {"internal": False, "host": config["host"], "port": config["port"],
            "sslmode": config["sslmode"], "db": db, "password_file": config["password_file"]}


def _redis(config: dict[str, Any], host: HostName) -> dict[str, Any]:
    if config["mode"] == "internal":
        return {"internal": True, "secret": "redis-password", "storage": config["storage"],
                "url": f"redis://{host('redis')}:{REDIS_PORT}/0"}
    scheme = "rediss" if config["tls"] else "redis"
    password_file = config.get("password_file")
    return {"internal": False, "secret": "redis-external" if password_file else "",
            "password_file": password_file,
            "url": f"{scheme}://{config['host']}:{config['port']}/0"}


def _kafka(config: dict[str, Any], host: HostName) -> dict[str, Any]:
    if config["mode"] == "internal":
        replicas = config["replicas"]
        brokers = [f"{host('kafka', i)}:{KAFKA_PORT}" for i in range(replicas)]
        voters = [f"{i}@{host('kafka', i)}:9093" for i in range(replicas)]
        return {"internal": True, "bootstrap": ",".join(brokers), "replicas": replicas,
                "quorum_voters": ",".join(voters),
                "replication_factor": min(replicas, 3), "storage": config["storage"]}
    return {"internal": False, "bootstrap": ",".join(config["bootstrap"])}
