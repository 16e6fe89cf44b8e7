"""The platform's secrets on Kubernetes: one Secret each in the platform's namespace, key
`value`, which the pods mount by name (the rendered objects only reference them).

As on Compose, a generated secret is made at first install and kept from then on, and one
read from a file on the installing host is written at every install or upgrade. Values are
returned only to be hashed for the ledger: nothing here prints or logs one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from heliostat import secret_values
from heliostat.drivers.kubernetes_api import api_error
from heliostat.drivers.kubernetes_errors import ObjectRefused
from heliostat.drivers.kubernetes_objects import ObjectApi, ObjectRef
from heliostat.secret_values import read_source

KEY = "value"
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"


def ensure_secrets(objects: ObjectApi, namespace: str, platform: str,
                   declared: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Every declared secret present as a Secret; returns name -> value."""
    # One LIST finds those heliostat made; a GET, any other one (a Secret made by hand).
    labelled = {item["metadata"]["name"]: item for item in objects.list(
        "v1", "Secret", namespace, f"{PART_OF}={platform},{MANAGED_BY}=heliostat")}
    values = {}
    for name, spec in sorted(declared.items()):
        ref = ObjectRef("v1", "Secret", name, namespace)
        current = _value(labelled[name] if name in labelled else objects.get(ref))
        if spec.get("from_file"):
            value = read_source(name, Path(str(spec["from_file"])).expanduser())
            if current != value:
                objects.apply(_secret(name, namespace, platform, value), force=True)
        elif current is None:
            value = secret_values.generate(str(spec.get("generate", "token")))
            try:
                objects.request("POST", objects.collection_path("v1", "Secret", namespace),
                                body=_secret(name, namespace, platform, value))
            except ApiException as error:
                if error.status != 409:
                    raise ObjectRefused(ref.key, api_error(error), error.status) from None
                value = _value(objects.get(ref)) or ""  # another install made it first
        else:
            value = current
        values[name] = value
    return values


def read_secret(objects: ObjectApi, namespace: str, name: str) -> str | None:
    return _value(objects.get(ObjectRef("v1", "Secret", name, namespace)))


def _value(secret: dict[str, Any] | None) -> str | None:
    if secret is None or KEY not in (secret.get("data") or {}):
        return None
    return base64.b64decode(secret["data"][KEY]).decode("utf-8")


def _secret(name: str, namespace: str, platform: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace, "labels": {
                PART_OF: platform, MANAGED_BY: "heliostat"}},
            "data": {KEY: base64.b64encode(value.encode("utf-8")).decode()}}
