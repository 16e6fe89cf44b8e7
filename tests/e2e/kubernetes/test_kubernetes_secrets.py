"""The platform's secrets as Secrets of its namespace, against a real API server: made once
and kept, read from a file at every apply, and a Secret made by hand left as it is."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from heliostat.drivers.kubernetes_objects import ObjectApi
from heliostat.drivers.kubernetes_secrets import ensure_secrets
from tests.infra.kubernetes_cluster import KubernetesCluster

PLATFORM = "acme"


@pytest.fixture
def objects(api: ApiClient) -> ObjectApi:
    return ObjectApi(api)


def secrets(kubernetes: KubernetesCluster, namespace: str) -> dict[str, dict]:
    listed = json.loads(kubernetes.kubectl("get", "secrets", "-n", namespace, "-o",
                                           "json").stdout)["items"]
    return {s["metadata"]["name"]: s for s in listed}


def value(secret: dict) -> str:
    return base64.b64decode(secret["data"]["value"]).decode()


DECLARED = {f"token-{n}": {"generate": "token"} for n in range(10)}


def test_generated_secrets_are_made_once_and_kept(kubernetes, namespace, objects):
    first = ensure_secrets(objects, namespace, PLATFORM, DECLARED)
    made = secrets(kubernetes, namespace)
    assert sorted(first) == sorted(DECLARED)
    assert len(set(first.values())) == len(DECLARED)  # each generated on its own
    for name, secret in ((n, made[n]) for n in DECLARED):
        assert value(secret) == first[name]
        assert secret["metadata"]["labels"]["app.kubernetes.io/part-of"] == PLATFORM

    assert ensure_secrets(objects, namespace, PLATFORM, DECLARED) == first
    again = secrets(kubernetes, namespace)
    assert all(again[n]["metadata"]["resourceVersion"] == made[n]["metadata"]["resourceVersion"]
               for n in DECLARED), "an unchanged secret was written again"


def test_a_secret_made_by_hand_is_used_as_it_is(kubernetes, namespace, objects):
    kubernetes.kubectl("create", "secret", "generic", "token-3", "-n", namespace,
                       "--from-literal=value=chosen-by-the-operator")
    values = ensure_secrets(objects, namespace, PLATFORM, DECLARED)
    assert values["token-3"] == "chosen-by-the-operator"
    assert "labels" not in secrets(kubernetes, namespace)["token-3"]["metadata"]


def test_a_secret_from_a_file_is_written_at_every_apply(kubernetes, namespace, objects,
                                                        tmp_path: Path):
    source = tmp_path / "password"
    source.write_text("first\n")
    declared = {"postgres-external": {"from_file": str(source)}}
    assert ensure_secrets(objects, namespace, PLATFORM, declared) == {
        "postgres-external": "first"}
    source.write_text("rotated\n")
    assert ensure_secrets(objects, namespace, PLATFORM, declared) == {
        "postgres-external": "rotated"}
    assert value(secrets(kubernetes, namespace)["postgres-external"]) == "rotated"
