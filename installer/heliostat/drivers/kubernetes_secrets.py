"""The platform's secrets on Kubernetes: one Secret each in the platform's namespace, key
`value`, which the pods mount by name (the rendered objects only reference them).

As on Compose, a generated secret is made at first install and kept from then on, and one
read from a file on the installing host is written at every install or upgrade. Values are
returned only to be hashed for the ledger: nothing here prints or logs one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from heliostat import secret_values
from heliostat.drivers.kubernetes_api import api_error
from heliostat.drivers.kubernetes_errors import ObjectRefused
from heliostat.drivers.kubernetes_objects import ObjectApi, ObjectRef
from heliostat.secret_values import read_source

KEY = "value"
PARALLEL_REQUESTS = 8


def ensure_secrets(objects: ObjectApi, namespace: str, platform: str,
                   declared: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Every declared secret present as a Secret; returns name -> value. A GET per secret,
    several at a time: a LIST would wait, on a namespace just made, for the API server's
    cache of Secrets to catch up (90 ms)."""

    def ensure(name: str) -> tuple[str, str]:
        spec = declared[name]
        ref = ObjectRef("v1", "Secret", name, namespace)
        current = _value(objects.get(ref))
        if spec.get("from_file"):
            value = read_source(name, Path(str(spec["from_file"])).expanduser())
            if current != value:
                objects.apply(_secret(name, namespace, platform, value), force=True)
            return name, value
        if current is not None:
            return name, current
        value = secret_values.generate(str(spec.get("generate", "token")))
        try:
            objects.request("POST", objects.collection_path("v1", "Secret", namespace),
                            body=_secret(name, namespace, platform, value))
        except ApiException as error:
            if error.status != 409:
                raise ObjectRefused(ref.key, api_error(error), error.status) from None
            value = _value(objects.get(ref)) or ""  # another install made it first
        return name, value

    with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        return dict(pool.map(ensure, sorted(declared)))


def read_secret(objects: ObjectApi, namespace: str, name: str) -> str | None:
    return _value(objects.get(ObjectRef("v1", "Secret", name, namespace)))


def _value(secret: dict[str, Any] | None) -> str | None:
    if secret is None or KEY not in (secret.get("data") or {}):
        return None
    return base64.b64decode(secret["data"][KEY]).decode("utf-8")


def _secret(name: str, namespace: str, platform: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "labels": {
                "app.kubernetes.io/part-of": platform,
                "app.kubernetes.io/managed-by": "heliostat"}},
            "data": {KEY: base64.b64encode(value.encode("utf-8")).decode()}}
