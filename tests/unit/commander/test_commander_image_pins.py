"""`images.services` in platform.yaml: how Commander's image updates reach the rendered
manifests, so `heliostat render` shows what was applied."""

from __future__ import annotations

import pytest
from commander_testing import platform_yaml

from heliostat.config import load_config
from heliostat.model import build_model
from heliostat.problems import InvalidInput
from heliostat.render import render_manifests


def render(tmp_path, pins: str) -> tuple[str, object]:
    path = platform_yaml(tmp_path)
    path.write_text(path.read_text() + f"images: {{registry: 'reg:5000', services: {pins}}}\n")
    model = build_model(load_config(path))
    return "".join(m.text() for m in render_manifests(model)), model


def test_a_tag_a_digest_or_a_reference(tmp_path):
    digest = "sha256:" + "d" * 64
    text, model = render(tmp_path, f"{{gateway: '2.0', registry: '{digest}', "
                                   "commander: 'other:5000/team/cmd:7'}")
    refs = {s.name: s.image_ref for s in model.services}
    assert refs == {"gateway": "reg:5000/heliostat/gateway:2.0",
                    "registry": f"reg:5000/heliostat/registry@{digest}",
                    "commander": "other:5000/team/cmd:7"}
    assert "image: reg:5000/heliostat/gateway:2.0\n" in text


def test_a_pin_for_a_service_not_run_is_an_error(tmp_path):
    with pytest.raises(InvalidInput, match=r"images.services.airflow-worker: no service "
                                           r"'airflow-worker' runs on this platform"):
        render(tmp_path, "{airflow-worker: '2.0'}")
    with pytest.raises(InvalidInput, match=r"images.services.gateway"):
        render(tmp_path, "{gateway: 'has space'}")


def test_the_registry_notifies_commander_without_holding_the_secret(tmp_path):
    _, model = render(tmp_path, "{}")
    registry = model.service("registry")
    assert "commander-webhook-secret" in registry.secrets
    assert registry.env["REGISTRY_NOTIFICATIONS_SECRET_FILE"] == \
        "/run/secrets/commander-webhook-secret"
    config = registry.files[0]["content"]
    assert "url: http://commander:8000/webhooks/registry" in config
    assert 'X-Heliostat-Webhook-Secret: ["${REGISTRY_NOTIFICATIONS_SECRET}"]' in config


def test_without_commander_the_registry_is_as_before(tmp_path):
    path = platform_yaml(tmp_path)
    path.write_text(path.read_text().replace("  commander:\n    auto_update: true\n",
                                             "  commander: {enabled: false}\n"))
    registry = build_model(load_config(path)).service("registry")
    assert registry.secrets == ["registry-http-secret"]
    assert set(registry.env) == {"REGISTRY_HTTP_SECRET_FILE"}
    assert "notifications" not in registry.files[0]["content"]
