"""Commander's API over a real ledger: auth, routing, errors, change requests queued as
operations, and the audit log they leave."""

from __future__ import annotations

import json
import re

from commander_testing import AUTH, NAME, TOKEN

from commander.api import create_app
from commander.openapi import build_spec

MAPPED = "auto_update: true\nrepositories: [{repository: gateway, services: [gateway]}]\n"


def test_the_api_wants_the_bearer_token(client, install):
    install(MAPPED)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        answer = client.get("/api/v1/releases", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "bearer token" in answer.get_json()["error"]
    assert client.get("/api/v1/releases", headers=AUTH).status_code == 200
    # Liveness, metrics and the spec need none.
    assert client.get("/health").get_json()["status"] == "ok"
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").get_json()["openapi"] == "3.1.0"


def test_a_refused_change_request_is_audited(client, commander, install):
    install(MAPPED)
    assert client.post("/api/v1/rollback", json={"revision": 1}).status_code == 401
    entry = commander.audit.entries()[-1]
    assert (entry["who"], entry["outcome"], entry["action"]) == (
        "unauthenticated", "refused", "POST /api/v1/rollback")


def test_releases_their_details_and_diffs(client, install, ledger, tmp_path):
    install(MAPPED)
    install(MAPPED.replace("auto_update: true", "auto_update: false"), "upgrade")
    releases = client.get("/api/v1/releases", headers=AUTH).get_json()["releases"]
    assert [(r["revision"], r["status"], r["origin"]) for r in releases] == [
        (1, "superseded", "cli"), (2, "deployed", "cli")]
    one = client.get("/api/v1/releases/1", headers=AUTH).get_json()
    assert one["secrets"]["commander-token"].startswith("sha256:")
    assert TOKEN not in json.dumps(one)
    assert "compose.yaml" in one["manifests"]
    diff = client.get("/api/v1/releases/1/diff/2", headers=AUTH).get_json()
    assert {"path": "modules.commander.auto_update", "from": True, "to": False} in diff["config"]
    assert diff["secrets_changed"] == []
    missing = client.get("/api/v1/releases/7", headers=AUTH)
    assert missing.status_code == 404
    assert missing.get_json() == {"error": "no revision 7 in the ledger (revisions are 1 to 2)",
                                  "status": 404}
    assert client.get("/api/v1/releases/1/diff/9", headers=AUTH).status_code == 404
    assert client.get("/api/v1/releases/x", headers=AUTH).get_json()["status"] == 404


def test_an_image_update_is_queued_at_once(client, commander, install, state_dir):
    install(MAPPED)
    answer = client.post("/api/v1/services/gateway/image", headers=AUTH,
                         json={"image": "1.2.0"})
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert body["state"] == "queued"
    assert body["description"] == "commander: image gateway:1.2.0"
    assert answer.headers["Location"] == f"/api/v1/operations/{body['operation']}"
    assert (state_dir / "commander" / "operations" / f"{body['operation']}.json").is_file()
    assert [op.id for op in commander.queue.pending()] == [body["operation"]]
    followed = client.get(body["url"], headers=AUTH).get_json()
    assert (followed["services"], followed["image"], followed["who"]) == (
        ["gateway"], "1.2.0", "token:commander-token")
    entry = commander.audit.entries()[-1]
    assert (entry["action"], entry["outcome"], entry["operation"], entry["remote"]) == (
        "image", "accepted", body["operation"], "127.0.0.1")


def test_an_image_update_of_a_group_member_rolls_the_group(client, install):
    install("groups: {edge: [registry, gateway]}\n")
    for name in ("gateway", "edge"):
        answer = client.post(f"/api/v1/services/{name}/image", headers=AUTH,
                             json={"image": "sha256:" + "c" * 64})
        assert answer.status_code == 202
        operation = client.get(answer.get_json()["url"], headers=AUTH).get_json()
        assert operation["services"] == ["registry", "gateway"]
    assert operation["description"] == f"commander: image edge@sha256:{'c' * 64}"


def test_bad_image_requests_are_4xx_json(client, install):
    def post(body: bytes | str, name: str = "gateway", content_type: str = "application/json"):
        answer = client.post(f"/api/v1/services/{name}/image", headers=AUTH, data=body,
                             content_type=content_type)
        return answer.status_code, answer.get_json()["error"]

    assert post(json.dumps({"image": "1.0"}))[0] == 409  # nothing installed yet
    install(MAPPED)
    assert post("{not json") == (400, "the body is not valid JSON")
    assert post("[1]") == (400, "the body must be a JSON object")
    assert post("{}")[0] == 400
    assert post(json.dumps({"image": 3})) == (400, "`image` is required and must be a string")
    assert post(json.dumps({"image": "1.0", "force": True})) == (400, "unknown field(s): force")
    assert post(json.dumps({"image": "no spaces"}))[1].startswith("image 'no spaces' is not")
    status, error = post(json.dumps({"image": "1.0"}), name="nope")
    assert status == 404 and error.startswith("no service or group nope on platform cmdr")
    assert client.get("/api/v1/services/gateway/image", headers=AUTH).status_code == 405


def test_rollback_requests(client, install):
    install(MAPPED)
    install(MAPPED, "upgrade")
    accepted = client.post("/api/v1/rollback", headers=AUTH, json={"revision": 1})
    assert accepted.status_code == 202
    assert accepted.get_json()["description"] == "commander: rollback to 1"
    for body, status in (({"revision": 9}, 404), ({"revision": True}, 400),
                         ({"revision": "1"}, 400), ({}, 400)):
        assert client.post("/api/v1/rollback", headers=AUTH, json=body).status_code == status


def test_rollback_to_a_revision_never_deployed_is_refused(client, install, ledger):
    install(MAPPED)
    failed = ledger.record_revision(origin="cli", description="upgrade", bundle_version="0",
                                    bundle_digest="", config={}, secrets={},
                                    manifests={"compose.yaml": "x"}, images={})
    ledger.mark(failed.number, "failed", "broken")
    answer = client.post("/api/v1/rollback", headers=AUTH, json={"revision": failed.number})
    assert answer.status_code == 409
    assert "was never deployed (failed)" in answer.get_json()["error"]


def test_unknown_operations_and_routes_are_404_json(client):
    assert client.get("/api/v1/operations/op-9", headers=AUTH).get_json() == {
        "error": "no operation op-9", "status": 404}
    assert client.get("/api/v1/operations/op-9/events", headers=AUTH).status_code == 404
    assert client.get("/nowhere").get_json()["status"] == 404


def test_status_of_a_platform_not_installed_needs_no_engine(client):
    status = client.get("/api/v1/status", headers=AUTH).get_json()
    assert status == {"platform": NAME, "revision": None, "pending": None, "services": [],
                      "modules": [], "operations": []}


def test_audit_limit(client, install):
    install(MAPPED)
    for _ in range(3):
        client.post("/api/v1/services/gateway/image", headers=AUTH, json={"image": "2.0"})
    assert len(client.get("/api/v1/audit", headers=AUTH).get_json()["entries"]) == 3
    assert len(client.get("/api/v1/audit?limit=2", headers=AUTH).get_json()["entries"]) == 2
    assert client.get("/api/v1/audit?limit=0", headers=AUTH).status_code == 400
    assert client.get("/api/v1/audit?limit=x", headers=AUTH).status_code == 400


def test_a_restarted_commander_knows_and_requeues_its_operations(settings, client, install):
    install(MAPPED)
    queued = client.post("/api/v1/services/gateway/image", headers=AUTH,
                         json={"image": "2.0"}).get_json()["operation"]
    again = create_app(settings, start_worker=False)
    restarted = again.extensions["commander"]
    assert [op.id for op in restarted.queue.pending()] == [queued]
    answer = again.test_client().get(f"/api/v1/operations/{queued}", headers=AUTH).get_json()
    assert answer["events"] == ["Commander restarted; queued again"]
    assert len(restarted.audit.entries()) == 1
    following = again.test_client().post("/api/v1/services/gateway/image", headers=AUTH,
                                          json={"image": "3.0"}).get_json()["operation"]
    assert following != queued  # numbering goes on after the known operations


def test_the_event_stream_of_a_finished_operation(client, commander, install):
    install(MAPPED)
    operation = client.post("/api/v1/services/gateway/image", headers=AUTH,
                            json={"image": "2.0"}).get_json()["operation"]
    commander.store.add_event(operation, "revision 2 (commander: image gateway:2.0): 1 to update")
    commander.store.add_event(operation, "revision 2 deployed")
    commander.store.update(operation, state="deployed", revision=2)
    answer = client.get(f"/api/v1/operations/{operation}/events", headers=AUTH)
    assert answer.mimetype == "text/event-stream"
    text = answer.get_data(as_text=True)
    assert text.startswith('id: 0\nevent: progress\ndata: {"line": "revision 2 (commander')
    assert "id: 1\nevent: progress\n" in text
    end = text.split("event: end\ndata: ", 1)[1]
    assert json.loads(end)["state"] == "deployed"
    resumed = client.get(f"/api/v1/operations/{operation}/events",
                         headers={**AUTH, "Last-Event-ID": "0"}).get_data(as_text=True)
    assert resumed.startswith("id: 1\n")


def test_openapi_describes_exactly_the_routes(app):
    spec = build_spec()
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(
            m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    assert routes == {path: set(methods) for path, methods in spec["paths"].items()}
    for path, methods in spec["paths"].items():
        named = set(re.findall(r"{(\w+)}", path))
        for operation in methods.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == named, path
            for answer in operation["responses"].values():
                for content in answer.get("content", {}).values():
                    ref = content["schema"].get("$ref", "")
                    assert not ref or ref.split("/")[-1] in spec["components"]["schemas"]
