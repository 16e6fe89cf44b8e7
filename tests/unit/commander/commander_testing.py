"""What Commander's unit tests share: the small platform.yaml, a deployed revision
recorded in a real ledger, the tokens, and registry events as distribution sends them."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from heliostat.ledger import Ledger
from heliostat.model import build_model
from heliostat.render import render_manifests

NAME = "cmdr"
TOKEN = "test-token-0123456789"
WEBHOOK_SECRET = "test-webhook-secret-abcdef"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def platform_yaml(directory: Path, commander: str = "") -> Path:
    (directory / "pg-password").write_text("x\n")
    path = directory / "platform.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: heliostat/v1
        name: {NAME}
        target: {{compose: {{state_dir: {directory / "state"}}}}}
        modules:
          clickstream: {{enabled: false}}
          pilot: {{enabled: false}}
          monitoring: {{enabled: false}}
          commander:
        """) + textwrap.indent(commander or "auto_update: true\n", "    ") + textwrap.dedent(f"""\
        stores:
          postgres: {{mode: external, host: pg.invalid, database: x, user: x,
                     password_file: {directory / "pg-password"}}}
          redis: {{mode: external, host: redis.invalid}}
          kafka: {{mode: external, bootstrap: ["kafka.invalid:9092"]}}
        """))
    return path


def record_deployed(ledger: Ledger, config: Any, description: str = "install") -> int:
    manifests = {m.filename: m.text() for m in render_manifests(build_model(config))}
    revision = ledger.record_revision(
        origin="cli", description=description, bundle_version="0.1.0", bundle_digest="",
        config=config.values, secrets={"commander-token": TOKEN}, manifests=manifests,
        images={})
    ledger.mark(revision.number, "deployed")
    return revision.number


AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOOK = {"X-Heliostat-Webhook-Secret": WEBHOOK_SECRET}


def push(repository: str = "gateway", tag: str = "1.2.0", digest: str = DIGEST_A,
         action: str = "push", event_id: str = "e1") -> dict[str, Any]:
    """One event as distribution 2.8 sends it for a manifest push."""
    return {"id": event_id, "timestamp": "2025-01-01T00:00:00Z", "action": action,
            "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "size": 528, "digest": digest, "length": 528,
                       "repository": repository, "tag": tag,
                       "url": f"http://registry:5000/v2/{repository}/manifests/{digest}"},
            "request": {"id": "r1", "addr": "10.0.0.9:4242", "host": "registry:5000",
                        "method": "PUT", "useragent": "docker/20.10"},
            "actor": {}, "source": {"addr": "registry:5000", "instanceID": "i"}}
