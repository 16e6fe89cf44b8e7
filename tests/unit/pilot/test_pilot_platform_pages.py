"""Overview and Releases: what Commander reports, shown; rolling back through Commander
with a confirmation, then following the operation; and Commander being down."""

from __future__ import annotations

import re
import socket

from pilot_testing import COMMANDER_TOKEN, STATUS, page_csrf, pilot_settings, sign_in

from pilot.app import create_app


def text(answer) -> str:
    return answer.get_data(as_text=True)


def test_the_overview_shows_modules_services_and_the_revision(admin, commander):
    answer = admin.get("/")
    assert answer.status_code == 200
    page = text(answer)
    for expected in ("pilotbed", "Deployed revision", ">2<", "upgrade", "<h2>core</h2>",
                     "<h2>commander</h2>", "gateway", "heliostat/registry:0.1.0",
                     "0 / 1", "state-unhealthy", "1h 2m", "1d 1h", "2 / 3"):
        assert expected in page, expected
    # Pilot authenticated to Commander with the platform's token.
    assert commander.status.authorizations[-1] == f"Bearer {COMMANDER_TOKEN}"
    api = admin.get("/api/v1/status")
    assert api.get_json() == STATUS


def test_the_overview_says_what_to_do_before_anything_is_installed(admin, commander):
    commander.status.body = {"platform": "pilotbed", "revision": None, "pending": None,
                             "services": [], "modules": [], "operations": []}
    page = text(admin.get("/"))
    assert "Nothing is deployed yet" in page and "heliostat install" in page
    assert "Commander reports no services" in page


def test_operations_under_way_and_a_pending_revision_are_shown(admin, commander):
    commander.status.body = {**STATUS, "pending": {"number": 3, "description": "upgrade"},
                             "operations": [{"id": "op-7", "kind": "rollback",
                                             "state": "running", "description": "rollback",
                                             "who": "x", "created_at": "2026-01-01"}]}
    page = text(admin.get("/"))
    assert "Being applied" in page
    assert 'href="/operations/op-7"' in page


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_commander_unreachable_is_a_clear_message_not_a_500(settings):
    app = create_app(pilot_settings(settings.postgres_dsn,
                                    f"http://127.0.0.1:{closed_port()}"))
    client = app.test_client()
    sign_in(client)
    page = client.get("/")
    assert page.status_code == 503
    assert "Commander is unavailable" in text(page)
    assert "Commander is unreachable at http://127.0.0.1:" in text(page)
    assert 'href="/releases"' in text(page)  # the rest of the console still works
    releases = client.get("/releases")
    assert releases.status_code == 503 and "Commander unavailable" in text(releases)
    api = client.get("/api/v1/status")
    assert api.status_code == 503
    assert api.get_json()["error"].startswith("Commander is unreachable")
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json()["status"] == "degraded"
    assert health.get_json()["checks"]["commander"].startswith("unreachable")


def test_commander_refusing_pilots_token_says_so(settings, commander):
    app = create_app(pilot_settings(settings.postgres_dsn, commander.url,
                                    commander_token="not-the-token"))
    client = app.test_client()
    sign_in(client)
    page = client.get("/")
    assert page.status_code == 503
    assert "Commander refused Pilot&#39;s token" in text(page)


def test_commander_failing_is_a_503_with_its_reason(admin, commander):
    commander.status.status, commander.status.body = 503, {
        "error": "cannot read the platform's state from its target: engine down",
        "status": 503}
    page = admin.get("/")
    assert page.status_code == 503
    assert "engine down" in text(page)
    commander.status.status, commander.status.body = 200, "not an object"
    assert admin.get("/").status_code == 503


def test_releases_newest_first_with_their_actions(admin):
    page = text(admin.get("/releases"))
    rows = re.findall(r'<th scope="row">(\d+)', page)
    assert rows == ["3", "2", "1"]
    assert "broken upgrade" in page and "state-failed" in page
    assert '<th scope="row">2 <small>(now)</small>' in page
    # Rollback is offered for what was deployed and is not current: revision 1 only.
    assert re.findall(r'href="/releases/(\d+)/rollback"', page) == ["1"]
    assert 'href="/releases/diff?from=1&amp;to=2"' in page


def test_the_diff_between_two_revisions(admin):
    answer = admin.get("/releases/diff?from=1&to=2")
    assert answer.status_code == 200
    page = text(answer)
    assert "modules.commander.auto_update" in page
    assert "true" in page and "false" in page
    same = text(admin.get("/releases/diff?from=2&to=2"))
    assert "No difference" in same
    api = admin.get("/api/v1/releases/1/diff/2").get_json()
    assert {"path": "modules.commander.auto_update", "from": True, "to": False} in api["config"]


def test_bad_diff_requests_are_400_and_404(admin):
    for query in ("", "?from=1", "?from=a&to=2", "?from=0&to=1", "?from=1&to=-2",
                  "?from=1&to=99999999999"):
        answer = admin.get(f"/releases/diff{query}")
        assert answer.status_code == 400, query
        assert "must be a revision number" in text(answer)
    missing = admin.get("/releases/diff?from=1&to=9")
    assert missing.status_code == 404
    assert "Commander refused: no revision 9" in text(missing)


def test_roll_back_with_confirmation_then_follow_the_operation(admin, commander):
    confirm = admin.get("/releases/1/rollback")
    assert confirm.status_code == 200
    page = text(confirm)
    assert "Roll back to revision 1" in page
    assert "from revision 2 (deployed now) to 1" in page
    assert "modules.commander.auto_update" in page
    assert commander.commander.store.all() == []  # looking is not acting
    answer = admin.post("/releases/1/rollback", data={"csrf_token": page_csrf(admin)})
    assert answer.status_code == 303
    operation = answer.headers["Location"].removeprefix("/operations/")
    queued = commander.commander.store.get(operation)
    assert queued is not None
    assert (queued.kind, queued.revision, queued.state) == ("rollback", 1, "queued")
    following = admin.get(f"/operations/{operation}")
    assert following.status_code == 200
    page = text(following)
    assert "state-queued" in page and 'data-finished="no"' in page
    assert "operation.js" in page and 'http-equiv="refresh"' in page
    commander.finish(operation, "deployed", 4, ("revision 4 (commander: rollback to 1)",
                                                "gateway: healthy", "revision 4 deployed"))
    done = text(admin.get(f"/operations/{operation}"))
    assert "state-deployed" in done and 'data-finished="yes"' in done
    assert "revision 4 deployed" in done and "operation.js" not in done
    api = admin.get(f"/api/v1/operations/{operation}").get_json()
    assert (api["state"], api["revision"], api["events"][-1]) == (
        "deployed", 4, "revision 4 deployed")


def test_roll_back_by_the_api(admin, commander):
    answer = admin.post("/api/v1/rollback", json={"revision": 1},
                        headers={"X-CSRF-Token": page_csrf(admin)})
    assert answer.status_code == 202
    body = answer.get_json()
    assert answer.headers["Location"] == f"/api/v1/operations/{body['operation']}"
    assert body["page"] == f"/operations/{body['operation']}"
    assert commander.commander.store.get(body["operation"]).revision == 1


def test_rolling_back_to_what_cannot_be_rolled_back_to(admin, commander):
    never = admin.get("/releases/3/rollback")
    assert never.status_code == 409
    assert "was never deployed" in text(never)
    assert "<form" not in text(never).split("<main", 1)[1].replace(
        'action="/logout"', "")
    assert admin.get("/releases/2/rollback").status_code == 409  # the current one
    assert admin.get("/releases/8/rollback").status_code == 404
    token = page_csrf(admin)
    refused = admin.post("/releases/3/rollback", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "Commander refused: revision 3 was never deployed" in text(refused)
    api = admin.post("/api/v1/rollback", json={"revision": 3}, headers={"X-CSRF-Token": token})
    assert api.status_code == 409
    for body in ({"revision": 0}, {"revision": "1"}, {"revision": True}, {}, [1],
                 {"revision": 1, "extra": 1}):
        assert admin.post("/api/v1/rollback", json=body,
                          headers={"X-CSRF-Token": token}).status_code == 400, body
    assert commander.commander.store.all() == []


def test_unknown_operations_are_404(admin):
    for path in ("/operations/op-99", "/operations/nope", "/operations/op-1%2F..%2Fx"):
        assert admin.get(path).status_code == 404, path
    assert admin.get("/api/v1/operations/op-99").get_json()["status"] == 404
