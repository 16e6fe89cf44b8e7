"""The registry webhook: its secret, the envelope, the repository mapping, duplicates and
bursts of pushes."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from commander_testing import AUTH, DIGEST_A, DIGEST_B, HOOK, platform_yaml, push, record_deployed

from commander.registry_events import MalformedEnvelope, classify, parse_envelope
from heliostat.config import load_config

MAPPED = ("auto_update: true\n"
          "repositories: [{repository: gateway, services: [gateway], tags: '1\\.[0-9.]+'}]\n")
CONTENT_TYPE = "application/vnd.docker.distribution.events.v1+json"


def notify(client, *events, headers=HOOK):
    return client.post("/webhooks/registry", headers=headers, content_type=CONTENT_TYPE,
                       data=json.dumps({"events": list(events)}))


def test_a_wrong_or_missing_secret_is_401_and_audited(client, commander, install):
    install(MAPPED)
    for headers in ({}, {"X-Heliostat-Webhook-Secret": "nope"}, AUTH):
        assert notify(client, push(), headers=headers).status_code == 401
    entry = commander.audit.entries()[-1]
    assert (entry["who"], entry["outcome"]) == ("registry", "refused")
    assert commander.queue.pending() == []


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"events": {}}', b'{"events": [1]}',
                                  b'{"events": [{"action": "push"}]}',
                                  b'{"events": [{"action": "push", "target": {"repository": 4}}]}',
                                  b'\xff\xfe'])
def test_a_malformed_envelope_is_400(client, install, body):
    install(MAPPED)
    answer = client.post("/webhooks/registry", headers=HOOK, data=body,
                         content_type=CONTENT_TYPE)
    assert answer.status_code == 400
    assert answer.get_json()["error"].startswith("not a registry notification envelope")


def test_a_mapped_push_is_queued_by_digest(client, commander, install):
    install(MAPPED)
    answer = notify(client, push())
    assert answer.status_code == 202
    [result] = answer.get_json()["events"]
    assert result["result"] == "queued"
    operation = commander.store.get(result["operation"])
    assert operation.image == f"registry:5000/gateway@{DIGEST_A}"
    assert operation.services == ("gateway",)
    assert operation.description == f"commander: registry push gateway@{DIGEST_A}"
    entry = commander.audit.entries()[-1]
    assert (entry["who"], entry["action"], entry["outcome"]) == (
        "registry", "registry push", "accepted")


def test_pulls_unknown_repositories_and_other_tags_are_ignored_and_audited(
        client, commander, install):
    install(MAPPED)
    answer = notify(client, push(action="pull"), push(repository="elsewhere"),
                    push(tag="latest"), push(tag=""))
    assert answer.status_code == 202
    reasons = [e["reason"] for e in answer.get_json()["events"]]
    assert [e["result"] for e in answer.get_json()["events"]] == ["ignored"] * 4
    assert reasons[0] == "a pull, not a push"
    assert reasons[1].startswith("repository elsewhere is not mapped to any service")
    assert reasons[2] == "tag latest does not match the pattern '1\\\\.[0-9.]+'"
    assert reasons[3].startswith("a push without a tag")
    audited = commander.audit.entries()
    assert [(e["outcome"], e["detail"]) for e in audited] == [("ignored", r) for r in reasons]
    assert commander.queue.pending() == []


def test_with_auto_update_off_a_push_is_only_audited(client, commander, install):
    install(MAPPED.replace("auto_update: true", "auto_update: false"))
    [result] = notify(client, push()).get_json()["events"]
    assert result["result"] == "ignored"
    assert "auto_update is off" in result["reason"]
    assert commander.queue.pending() == []


def test_a_hundred_duplicate_notifications_queue_one_operation(client, commander, install):
    install(MAPPED)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: notify(client, push()), range(100)))
    assert {a.status_code for a in answers} == {202}
    results = [a.get_json()["events"][0] for a in answers]
    assert sum(r["result"] == "queued" for r in results) == 1
    assert len(commander.queue.pending()) == 1
    duplicate = next(r for r in results if r["result"] == "ignored")
    assert "one digest makes one revision" in duplicate["reason"]
    # Even once it has run (whatever came of it), the same digest is not tried again.
    commander.store.update(commander.queue.take(0).id, state="rolled-back")
    commander.queue.done()
    assert notify(client, push()).get_json()["events"][0]["result"] == "ignored"


def test_a_burst_of_pushes_collapses_into_the_newest(client, commander, install):
    install(MAPPED)
    first = notify(client, push(digest=DIGEST_A)).get_json()["events"][0]["operation"]
    second = notify(client, push(digest=DIGEST_B, tag="1.3")).get_json()["events"][0]
    [queued] = commander.queue.pending()
    assert queued.id == second["operation"]
    older = commander.store.get(first)
    assert (older.state, older.superseded_by) == ("superseded", queued.id)
    assert [e["outcome"] for e in commander.audit.entries()] == [
        "accepted", "superseded", "accepted"]


def test_a_push_of_what_is_deployed_changes_nothing(client, commander, install, tmp_path):
    install(MAPPED)
    # Deployed already: gateway pinned to that very reference.
    path = platform_yaml(tmp_path, MAPPED)
    path.write_text(path.read_text() + "images: {services: {gateway: "
                    f"'registry:5000/gateway@{DIGEST_A}'}}}}\n")
    record_deployed(commander.platform.ledger, load_config(path), "pinned")
    [result] = notify(client, push()).get_json()["events"]
    assert result["result"] == "ignored"
    assert result["reason"].startswith("already deployed: gateway run registry:5000/gateway@")


def test_envelope_parsing_keeps_what_classification_needs():
    [event] = parse_envelope({"events": [push(event_id="x")]})
    assert (event.id, event.action, event.repository, event.tag, event.digest, event.host) == (
        "x", "push", "gateway", "1.2.0", DIGEST_A, "registry:5000")
    with pytest.raises(MalformedEnvelope, match=r"events\[0\].target.tag must be a string"):
        parse_envelope({"events": [{**push(), "target": {**push()["target"], "tag": 5}}]})
    mapping = [{"repository": "gateway", "services": ["gateway"], "tags": "(",
                "registry": ""}]
    assert "not a valid expression" in classify(event, mapping).reason
    explicit = [{"repository": "gateway", "services": ["gateway"], "tags": ".*",
                 "registry": "127.0.0.1:5000"}]
    assert classify(event, explicit).image == f"127.0.0.1:5000/gateway@{DIGEST_A}"
