"""Every Kubernetes object heliostat renders is accepted by a real API server: a server-side
apply, dry-run, of each example's objects and of the objects of generated configs, with the
API server's own validation (schemas, defaulting, admission) as the judge."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings

from heliostat.config import PlatformConfig, config_from_document, load_config
from heliostat.model import build_model
from heliostat.problems import InvalidInput
from heliostat.render import Manifest, render_manifests
from heliostat.yaml_source import load_yaml_text
from tests.infra.kubernetes_cluster import KubernetesCluster
from tests.unit.heliostat.generated_configs import mutated_documents

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def dry_run(kubernetes: KubernetesCluster, manifests: list[Manifest]) -> str:
    """Applies the objects server-side with --dry-run=server; returns kubectl's stderr, empty
    when every object was accepted. The namespace is created for real (a dry-run create of
    it would leave the namespaced objects nowhere to go)."""
    namespaces = [m.text() for m in manifests if m.kind == "Namespace"]
    kubernetes.kubectl("apply", "--server-side", "--field-manager=heliostat", "-f", "-",
                       input="---\n".join(namespaces))
    others = "---\n".join(m.text() for m in manifests if m.kind != "Namespace")
    result = kubernetes.kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=heliostat", "-f", "-",
        input=others, check=False)
    return result.stderr if result.returncode else ""


def kubernetes_objects(config: PlatformConfig) -> list[Manifest]:
    return render_manifests(build_model(config.with_profile("kubernetes")))


@pytest.mark.parametrize("example", ["kubernetes", "compose", "marathon"])
def test_every_example_is_accepted(kubernetes: KubernetesCluster, example: str) -> None:
    """The examples of the other targets too, rendered for Kubernetes."""
    manifests = kubernetes_objects(load_config(EXAMPLES / f"{example}.yaml"))
    assert len(manifests) > 40
    assert dry_run(kubernetes, manifests) == ""


def test_the_default_platform_is_accepted(kubernetes: KubernetesCluster) -> None:
    assert dry_run(kubernetes, kubernetes_objects(load_config(None))) == ""


def test_an_invalid_object_is_refused_by_name(kubernetes: KubernetesCluster) -> None:
    """The check can fail: a Deployment with negative replicas is refused, and said so."""
    manifests = kubernetes_objects(load_config(EXAMPLES / "kubernetes.yaml"))
    broken = []
    for manifest in manifests:
        if manifest.kind == "Deployment" and manifest.name == "pilot":
            body = copy.deepcopy(manifest.body)
            body["spec"]["replicas"] = -1
            manifest = Manifest(manifest.kind, manifest.name, body, manifest.filename)
        broken.append(manifest)
    refused = dry_run(kubernetes, broken)
    assert 'Deployment "pilot" is invalid' in refused
    assert "spec.replicas" in refused


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(mutated_documents().map(lambda document: {**document, "profile": "kubernetes"}))
def test_objects_of_generated_configs_are_accepted(
    kubernetes: KubernetesCluster, document: dict
) -> None:
    try:
        config = config_from_document(load_yaml_text(yaml.safe_dump(document), "fuzz.yaml"))
    except InvalidInput:
        assume(False)  # the loader's fuzz test covers rejected documents
        return
    manifests = render_manifests(build_model(config))
    assert dry_run(kubernetes, manifests) == "", yaml.safe_dump(document)
