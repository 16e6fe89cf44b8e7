"""Clickstream apps: made on the page or by the API with their first write key shown once,
keys added and revoked to rotate, the snippets that send events here; viewers look, only
admins change; bad input is a clear 4xx; and Pilot runs on without the clickstream module.

The clickstream database is a real one of its own (as the platform gives the module),
its schema made by clickstream's own migrations; keys are checked with
clickstream.storage, as the Event API resolves them.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from pilot_testing import add_user, page_csrf, pilot_settings, sign_in
from schemathesis import openapi
from schemathesis.generation import GenerationMode
from werkzeug.test import TestResponse

from clickstream import storage
from clickstream.migrate import migrate
from pilot.app import create_app
from pilot.settings import Settings, SettingsError

KEY = re.compile(r'id="write-key" class="mono wide" readonly value="([A-Za-z0-9_-]+)"')
CSRF_REFUSED = "security token (CSRF) is missing or does not match"
VIEWER_PASSWORD = "viewer-password-0123"


@pytest.fixture
def clickstream_dsn(postgres) -> Iterator[str]:
    with postgres.fresh_database() as dsn:
        migrate(dsn)
        yield dsn


@pytest.fixture
def settings(pg_database, commander, clickstream_dsn) -> Settings:
    """Pilot with the clickstream module enabled (conftest's Pilot runs without it)."""
    return pilot_settings(pg_database, commander.url, clickstream_dsn=clickstream_dsn)


def make_app(client: FlaskClient, name: str = "web shop", **fields: str) -> tuple[int, str]:
    """(the new app's id, its write key) from the page that shows the key once."""
    answer = client.post("/apps", data={"name": name, **fields,
                                        "csrf_token": page_csrf(client, "/apps")})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return app_id_of(answer), key_of(answer)


def key_of(answer: TestResponse) -> str:
    found = KEY.search(answer.get_data(as_text=True))
    assert found, answer.get_data(as_text=True)[:2000]
    return found[1]


def app_id_of(answer: TestResponse) -> int:
    found = re.search(r'action="/apps/(\d+)/keys"|href="/apps/(\d+)"', answer.get_data(
        as_text=True))
    assert found
    return int(found[1] or found[2])


def resolves(dsn: str, key: str) -> str | None:
    """The name of the app the Event API would take `key` for, if any."""
    with psycopg.connect(dsn) as conn:
        app = storage.app_for_write_key(conn, key)
    return app.name if app else None


def keys_of(dsn: str, app_id: int) -> list[storage.WriteKey]:
    with psycopg.connect(dsn) as conn:
        return storage.list_write_keys(conn, app_id)


def words(answer: TestResponse) -> str:
    """The page's text with its runs of white space as single spaces."""
    return " ".join(answer.get_data(as_text=True).split())


def bearer(token: str) -> dict[str, dict[str, str]]:
    return {"headers": {"Authorization": f"Bearer {token}"}}


def api_token(client: FlaskClient, role: str) -> str:
    made = client.post("/api/v1/tokens", json={"name": f"{role} script", "role": role},
                       headers={"X-CSRF-Token": page_csrf(client)})
    assert made.status_code == 201
    return made.get_json()["token"]


def signed_in_viewer(admin: FlaskClient) -> FlaskClient:
    add_user(admin, "viewer1", password=VIEWER_PASSWORD)
    viewer = admin.application.test_client()
    assert sign_in(viewer, "viewer1", VIEWER_PASSWORD).status_code == 303
    return viewer


def test_an_app_is_made_with_its_key_shown_once_and_the_key_works(admin, clickstream_dsn):
    empty = admin.get("/apps").get_data(as_text=True)
    assert "No apps yet." in empty and "Create one above" in empty
    answer = admin.post("/apps", data={"name": "  web shop ", "rate_limit": "50",
                                       "csrf_token": page_csrf(admin, "/apps")})
    assert answer.status_code == 201
    assert answer.headers["Cache-Control"] == "no-store"
    key, app_id = key_of(answer), app_id_of(answer)
    assert "it is not shown again" in answer.get_data(as_text=True)
    assert resolves(clickstream_dsn, key) == "web shop"
    with psycopg.connect(clickstream_dsn) as conn:
        assert storage.get_app(conn, app_id).rate_limit == 50
        stored = conn.execute("SELECT key_hash, key_prefix FROM clickstream.write_keys"
                              ).fetchall()
    assert stored == [(hashlib.sha256(key.encode()).digest(), key[:6])]
    # Never shown again: neither on the pages nor by the API, only its first characters.
    for later in (admin.get("/apps"), admin.get(f"/apps/{app_id}"),
                  admin.get("/api/v1/apps"), admin.get(f"/api/v1/apps/{app_id}/keys")):
        assert later.status_code == 200
        assert key not in later.get_data(as_text=True)
    assert f"{key[:6]}…" in admin.get(f"/apps/{app_id}").get_data(as_text=True)
    assert admin.get("/api/v1/apps").get_json()["apps"] == [
        {"id": app_id, "name": "web shop", "rate_limit": 50, "active_keys": 1,
         "keys": [{"id": stored_key_id(clickstream_dsn, app_id), "app_id": app_id,
                   "prefix": key[:6], "state": "active"}]}]


def stored_key_id(dsn: str, app_id: int) -> int:
    (only,) = keys_of(dsn, app_id)
    return only.id


def test_the_snippets_carry_the_key_and_point_at_the_event_api(admin):
    answer = admin.post("/apps", data={"name": "docs site",
                                       "csrf_token": page_csrf(admin, "/apps")})
    key = key_of(answer)
    page = html.unescape(answer.get_data(as_text=True))
    # The gateway routes /v1/ to the Event API: the browser's own origin, then /v1.
    assert f'writeKey: "{key}"' in page and f'apiKey: "{key}"' in page
    assert 'apiHost: "localhost/v1", protocol: "http"' in page
    # So the library asks nothing of Segment's CDN, nor sends it telemetry.
    assert "cdnSettings: {" in page and "metrics: { sampleRate: 0 }" in page
    # Or loaded from the platform's gateway, the tracker and its settings alike.
    assert ('script.src = "http://localhost" + "/analytics.js/v1/" + key' in page
            and 'analytics._cdn = "http://localhost";' in page
            and f'analytics.load("{key}");' in page)
    # Shell-safe as they are (urlsafe key, plain URL), so shlex leaves them unquoted.
    assert f"curl -u {key}: \\\n" in page and "\n  http://localhost/v1/track</code>" in page
    assert '"userId": "user-42"' in page
    # Behind the gateway (a trusted proxy), the origin is what the browser used.
    gateway = {"Host": "data.example.com", "X-Forwarded-Proto": "https",
               "X-Forwarded-For": "198.51.100.7"}
    browser = admin.application.test_client()
    session = admin.get_cookie("pilot_session")
    assert session is not None
    browser.set_cookie("pilot_session", session.value, domain="data.example.com")
    proxied = browser.get(f"/apps/{app_id_of(answer)}", headers=gateway)
    assert proxied.status_code == 200
    text = html.unescape(proxied.get_data(as_text=True))
    assert 'apiHost: "data.example.com/v1", protocol: "https"' in text
    assert "\n  https://data.example.com/v1/track</code>" in text
    assert key not in text and 'writeKey: "YOUR_WRITE_KEY"' in text
    assert "in place of <code>YOUR_WRITE_KEY</code>" in " ".join(text.split())
    assert admin.get("/static/copy.js").status_code == 200
    # The gateway passes on the host without its port: the browser's own origin says it.
    behind = admin.post("/apps", data={"name": "on a port", "csrf_token": page_csrf(admin)},
                        headers={"Origin": "http://localhost:8080"})
    assert 'apiHost: "localhost:8080/v1", protocol: "http"' in html.unescape(
        behind.get_data(as_text=True))
    within = admin.get(f"/apps/{app_id_of(behind)}",
                       headers={"Referer": "https://localhost:8443/apps"})
    assert "https://localhost:8443/v1/track" in within.get_data(as_text=True)
    # Another site's origin is not this platform's.
    elsewhere = admin.get(f"/apps/{app_id_of(behind)}",
                          headers={"Referer": "https://other.example:8443/page"})
    assert "http://localhost/v1/track" in elsewhere.get_data(as_text=True)
    for bad in ("http://localhost:port", "javascript:alert(1)", "//localhost:1"):
        page = admin.get(f"/apps/{app_id_of(behind)}", headers={"Referer": bad})
        assert "http://localhost/v1/track" in page.get_data(as_text=True), bad
    made = admin.application.test_client().post(
        "/api/v1/apps", json={"name": "api site"},
        headers={**gateway, "Authorization": f"Bearer {api_token(admin, 'admin')}"})
    assert made.get_json()["event_api"] == "https://data.example.com/v1"


def test_a_rotated_key_works_beside_the_old_one_until_that_is_revoked(admin, clickstream_dsn):
    app_id, old = make_app(admin)
    added = admin.post(f"/apps/{app_id}/keys", data={"csrf_token": page_csrf(admin)})
    assert added.status_code == 201
    new = key_of(added)
    assert new != old
    assert f"{old[:6]}…</span>) keeps working until revoked" in words(added)
    assert resolves(clickstream_dsn, old) == resolves(clickstream_dsn, new) == "web shop"
    old_id, new_id = (k.id for k in keys_of(clickstream_dsn, app_id))

    confirm = admin.get(f"/apps/{app_id}/keys/{old_id}/revoke")
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    assert f'action="/apps/{app_id}/keys/{old_id}/revoke"' in page
    assert "other active key" in page and f"{new[:6]}…" in page
    assert resolves(clickstream_dsn, old) == "web shop"  # asking to confirm changes nothing
    done = admin.post(f"/apps/{app_id}/keys/{old_id}/revoke",
                      data={"csrf_token": page_csrf(admin)})
    assert (done.status_code, done.headers["Location"]) == (
        303, f"/apps/{app_id}?notice=revoked")
    assert "The write key was revoked" in admin.get(done.headers["Location"]).get_data(
        as_text=True)
    assert resolves(clickstream_dsn, old) is None
    assert resolves(clickstream_dsn, new) == "web shop"
    assert [(k.id, k.revoked) for k in keys_of(clickstream_dsn, app_id)] == [
        (old_id, True), (new_id, False)]

    again = admin.get(f"/apps/{app_id}/keys/{old_id}/revoke")
    assert again.status_code == 409 and "revoked already" in again.get_data(as_text=True)
    last = admin.get(f"/apps/{app_id}/keys/{new_id}/revoke").get_data(as_text=True)
    assert "This is the app's only active key" in last
    admin.post(f"/apps/{app_id}/keys/{new_id}/revoke", data={"csrf_token": page_csrf(admin)})
    assert resolves(clickstream_dsn, new) is None
    assert "This app has no active write key" in admin.get(f"/apps/{app_id}").get_data(
        as_text=True)


def test_a_viewer_sees_the_apps_and_cannot_change_them(admin, clickstream_dsn):
    app_id, key = make_app(admin)
    (key_id,) = (k.id for k in keys_of(clickstream_dsn, app_id))
    viewer = signed_in_viewer(admin)
    listing = viewer.get("/apps")
    assert listing.status_code == 200
    text = listing.get_data(as_text=True)
    assert "web shop" in text and 'action="/apps"' not in text
    page = viewer.get(f"/apps/{app_id}").get_data(as_text=True)
    assert f"{key[:6]}…" in page
    assert "Add a write key" not in page and "/revoke" not in page
    token = page_csrf(viewer, "/apps")
    refused = [viewer.post("/apps", data={"name": "mine", "csrf_token": token}),
               viewer.post(f"/apps/{app_id}/keys", data={"csrf_token": token}),
               viewer.get(f"/apps/{app_id}/keys/{key_id}/revoke"),
               viewer.post(f"/apps/{app_id}/keys/{key_id}/revoke", data={"csrf_token": token}),
               viewer.post("/api/v1/apps", json={"name": "mine"},
                           headers={"X-CSRF-Token": token}),
               viewer.post(f"/api/v1/apps/{app_id}/keys", headers={"X-CSRF-Token": token}),
               viewer.delete(f"/api/v1/apps/{app_id}/keys/{key_id}",
                             headers={"X-CSRF-Token": token})]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert "viewer1 is a viewer; only an admin can do this" in refused[0].get_data(
        as_text=True)
    assert refused[-1].get_json() == {
        "error": "viewer1 is a viewer; only an admin can do this", "status": 403}
    assert viewer.get("/api/v1/apps").get_json()["apps"][0]["name"] == "web shop"
    with psycopg.connect(clickstream_dsn) as conn:
        assert [a.name for a in storage.list_apps(conn)] == ["web shop"]
    assert [(k.id, k.revoked) for k in keys_of(clickstream_dsn, app_id)] == [(key_id, False)]


def test_a_viewer_is_told_who_can_make_the_first_app(admin):
    viewer = signed_in_viewer(admin)
    assert "No apps yet. An admin can create one; it then appears here." in words(
        viewer.get("/apps"))


def test_changes_without_the_csrf_token_are_refused(admin, clickstream_dsn):
    app_id, key = make_app(admin)
    (key_id,) = (k.id for k in keys_of(clickstream_dsn, app_id))
    answers = [admin.post("/apps", data={"name": "forged"}),
               admin.post(f"/apps/{app_id}/keys", data={"csrf_token": "forged"}),
               admin.post(f"/apps/{app_id}/keys/{key_id}/revoke", data={}),
               admin.post("/api/v1/apps", json={"name": "forged"}),
               admin.delete(f"/api/v1/apps/{app_id}/keys/{key_id}",
                            headers={"X-CSRF-Token": "forged"})]
    assert [a.status_code for a in answers] == [400] * len(answers)
    assert CSRF_REFUSED in answers[0].get_data(as_text=True)
    assert CSRF_REFUSED in answers[-1].get_json()["error"]
    with psycopg.connect(clickstream_dsn) as conn:
        assert [a.name for a in storage.list_apps(conn)] == ["web shop"]
    assert len(keys_of(clickstream_dsn, app_id)) == 1
    assert resolves(clickstream_dsn, key) == "web shop"


def test_api_tokens_act_with_their_role(admin, clickstream_dsn):
    admin_token, viewer_token = api_token(admin, "admin"), api_token(admin, "viewer")
    api = admin.application.test_client()  # no session: the token alone
    made = api.post("/api/v1/apps", json={"name": "mobile", "rate_limit": 100},
                    **bearer(admin_token))
    assert made.status_code == 201
    body = made.get_json()
    app_id = body["id"]
    assert made.headers["Location"] == f"/api/v1/apps/{app_id}"
    assert (body["name"], body["rate_limit"], body["active_keys"]) == ("mobile", 100, 1)
    assert body["event_api"] == "http://localhost/v1"
    assert resolves(clickstream_dsn, body["write_key"]) == "mobile"
    assert body["keys"][0]["prefix"] == body["write_key"][:6]

    added = api.post(f"/api/v1/apps/{app_id}/keys", **bearer(admin_token))
    assert added.status_code == 201
    new = added.get_json()
    assert added.headers["Location"] == f"/api/v1/apps/{app_id}/keys/{new['id']}"
    assert (new["app_id"], new["state"], new["prefix"]) == (app_id, "active",
                                                            new["write_key"][:6])
    assert resolves(clickstream_dsn, new["write_key"]) == "mobile"
    first_id = body["keys"][0]["id"]
    assert api.get(f"/api/v1/apps/{app_id}/keys/{new['id']}",
                   **bearer(viewer_token)).get_json()["state"] == "active"

    # A viewer's token (even an admin's own) reads and changes nothing.
    assert api.get(f"/api/v1/apps/{app_id}", **bearer(viewer_token)).status_code == 200
    assert [api.post("/api/v1/apps", json={"name": "x"}, **bearer(viewer_token)).status_code,
            api.post(f"/api/v1/apps/{app_id}/keys", **bearer(viewer_token)).status_code,
            api.delete(f"/api/v1/apps/{app_id}/keys/{first_id}",
                       **bearer(viewer_token)).status_code] == [403, 403, 403]
    assert resolves(clickstream_dsn, body["write_key"]) == "mobile"

    revoked = api.delete(f"/api/v1/apps/{app_id}/keys/{first_id}", **bearer(admin_token))
    assert (revoked.status_code, revoked.get_json()) == (200, {
        "id": first_id, "app_id": app_id, "prefix": body["write_key"][:6], "state": "revoked"})
    assert resolves(clickstream_dsn, body["write_key"]) is None
    assert resolves(clickstream_dsn, new["write_key"]) == "mobile"
    # Revoking again is the same outcome, not an error.
    again = api.delete(f"/api/v1/apps/{app_id}/keys/{first_id}", **bearer(admin_token))
    assert (again.status_code, again.get_json()["state"]) == (200, "revoked")
    assert [k["state"] for k in api.get(f"/api/v1/apps/{app_id}/keys",
                                        **bearer(viewer_token)).get_json()["keys"]] == [
        "revoked", "active"]

    assert api.get("/api/v1/apps").status_code == 401
    token_id = next(t["id"] for t in admin.get("/api/v1/tokens").get_json()["tokens"]
                    if t["role"] == "admin")
    admin.delete(f"/api/v1/tokens/{token_id}", headers={"X-CSRF-Token": page_csrf(admin)})
    assert api.post("/api/v1/apps", json={"name": "late"},
                    **bearer(admin_token)).status_code == 401


def test_bad_form_input_is_shown_next_to_its_field(admin, clickstream_dsn):
    make_app(admin, "taken")
    token = page_csrf(admin, "/apps")
    cases = [({"name": ""}, 400, "Name: required"),
             ({"name": "   "}, 400, "Name: required"),
             ({"name": "x" * 101}, 400, "Name: at most 100 characters"),
             ({"name": "12345"}, 400, "Name: not only digits"),
             ({"name": "a\x00b"}, 400, "Name: no control characters"),
             ({"name": "ok", "rate_limit": "0"}, 400,
              "Rate limit (events/s): a whole number from 1 to 1000000"),
             ({"name": "ok", "rate_limit": "many"}, 400, "a whole number from 1 to 1000000"),
             ({"name": "taken"}, 409, "Name: there is already an app of that name")]
    for data, status, message in cases:
        answer = admin.post("/apps", data={**data, "csrf_token": token})
        assert answer.status_code == status, data
        page = answer.get_data(as_text=True)
        assert message in page, (data, page[-3000:])
        assert 'aria-invalid="true"' in page and "Traceback" not in page
    assert "x" * 100 in admin.post("/apps", data={"name": "x" * 100, "csrf_token": token}
                                   ).get_data(as_text=True)  # the longest name is fine
    with psycopg.connect(clickstream_dsn) as conn:
        assert [a.name for a in storage.list_apps(conn)] == ["taken", "x" * 100]


def test_unknown_and_malformed_ids_are_404s(admin, clickstream_dsn):
    app_id, _ = make_app(admin)
    other_id, _ = make_app(admin, "other")
    (other_key,) = (k.id for k in keys_of(clickstream_dsn, other_id))
    token = page_csrf(admin)
    huge = "9" * 20  # beyond a bigint
    answers = {
        "/apps/999": admin.get("/apps/999"),
        "/apps/999/keys": admin.post("/apps/999/keys", data={"csrf_token": token}),
        "/apps/abc": admin.get("/apps/abc"),
        "/apps/-1": admin.get("/apps/-1"),
        "/apps/1e3/keys": admin.post("/apps/1e3/keys", data={"csrf_token": token}),
        f"/apps/{huge}": admin.get(f"/apps/{huge}"),
        "key of another app": admin.get(f"/apps/{app_id}/keys/{other_key}/revoke"),
        "its revoke": admin.post(f"/apps/{app_id}/keys/{other_key}/revoke",
                                 data={"csrf_token": token}),
        "no such key": admin.post(f"/apps/{app_id}/keys/{huge}/revoke",
                                  data={"csrf_token": token}),
        "api app": admin.get(f"/api/v1/apps/{huge}"),
        "api keys": admin.post("/api/v1/apps/999/keys", headers={"X-CSRF-Token": token}),
        "api other's key": admin.delete(f"/api/v1/apps/{app_id}/keys/{other_key}",
                                        headers={"X-CSRF-Token": token}),
        "api x": admin.get("/api/v1/apps/x/keys"),
    }
    assert {where: a.status_code for where, a in answers.items()} == dict.fromkeys(answers,
                                                                                    404)
    assert "There is no clickstream app 999." in answers["/apps/999"].get_data(as_text=True)
    assert answers["api app"].get_json() == {"error": f"There is no clickstream app {huge}.",
                                             "status": 404}
    assert answers["api other's key"].get_json()["error"] == (
        f"App web shop has no write key {other_key}.")
    assert not keys_of(clickstream_dsn, other_id)[0].revoked


def test_bad_json_is_a_400_that_says_why(admin):
    headers = {"X-CSRF-Token": page_csrf(admin)}
    admin.post("/api/v1/apps", json={"name": "taken"}, headers=headers)
    cases = [
        (b"{}", "application/json", 400, "`name` is required"),
        (b'{"name": ""}', "application/json", 400, "`name` must be 1 to 100 characters"),
        (b'{"name": "' + b"x" * 101 + b'"}', "application/json", 400, "1 to 100 characters"),
        (b'{"name": "a\\u0000b"}', "application/json", 400, "none of them a control"),
        (b'{"name": "a\\ud800b"}', "application/json", 400, "not valid Unicode text"),
        (b'{"name": "42"}', "application/json", 400, "`name`: not only digits"),
        (b'{"name": 5}', "application/json", 400, "`name` must be a string"),
        (b'{"name": "a", "rate_limit": 0}', "application/json", 400,
         "`rate_limit` must be from 1 to 1000000"),
        (b'{"name": "a", "rate_limit": "5"}', "application/json", 400,
         "`rate_limit` must be a whole number"),
        (b'{"name": "a", "rate_limit": true}', "application/json", 400, "whole number"),
        (b'{"name": "a", "owner": "me"}', "application/json", 400, "unknown field(s): owner"),
        (b'{"name": "a"}', "text/plain", 400, "Content-Type: application/json"),
        (b"[", "application/json", 400, "the body is not valid JSON"),
        (b'{"name": "taken"}', "application/json", 409,
         "there is already an app named 'taken'"),
    ]
    for body, content_type, status, message in cases:
        answer = admin.post("/api/v1/apps", data=body, content_type=content_type,
                            headers=headers)
        assert answer.status_code == status, body
        assert message in answer.get_json()["error"], (body, answer.get_json())
    app_id = admin.get("/api/v1/apps").get_json()["apps"][0]["id"]
    for body, message in ((b"[]", "must be a JSON object"),
                          (b'{"rotate": true}', "unknown field(s): rotate")):
        answer = admin.post(f"/api/v1/apps/{app_id}/keys", data=body,
                            content_type="application/json", headers=headers)
        assert answer.status_code == 400 and message in answer.get_json()["error"]
    assert admin.post(f"/api/v1/apps/{app_id}/keys", json={},
                      headers=headers).status_code == 201
    assert [a["name"] for a in admin.get("/api/v1/apps").get_json()["apps"]] == ["taken"]


def test_without_the_clickstream_module_pilot_starts_and_says_so(pg_database, commander):
    app = create_app(pilot_settings(pg_database, commander.url))
    client = app.test_client()
    assert sign_in(client).status_code == 303
    page = client.get("/apps")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "The clickstream module is not enabled on this platform" in text
    assert "modules.clickstream.enabled: true" in text and 'action="/apps"' not in text
    api = client.get("/api/v1/apps")
    assert api.status_code == 404
    assert api.get_json()["error"].startswith("The clickstream module is not enabled")
    assert client.get("/apps/1").status_code == 404
    assert client.post("/apps", data={"name": "x", "csrf_token": page_csrf(client)}
                       ).status_code == 404
    assert client.get("/health").get_json() == {
        "status": "ok", "checks": {"postgres": "ok", "commander": "ok"}}


def test_health_reports_the_clickstream_database(client):
    assert client.get("/health").get_json() == {
        "status": "ok", "checks": {"postgres": "ok", "commander": "ok", "clickstream": "ok"}}


def test_an_unreachable_or_unmigrated_clickstream_database_is_a_503(pg_database, commander,
                                                                     postgres):
    down = create_app(pilot_settings(pg_database, commander.url,
                                     clickstream_dsn="postgresql://x:y@127.0.0.1:1/none"))
    client = down.test_client()  # Pilot starts all the same
    assert sign_in(client).status_code == 303
    page = client.get("/apps")
    assert (page.status_code, page.headers["Retry-After"]) == (503, "5")
    assert "The clickstream database is unavailable" in page.get_data(as_text=True)
    assert client.get("/api/v1/apps").status_code == 503
    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "degraded"
    assert "127.0.0.1" in health.get_json()["checks"]["clickstream"]
    with postgres.fresh_database() as unmigrated:
        bare = create_app(pilot_settings(pg_database, commander.url,
                                         clickstream_dsn=unmigrated)).test_client()
        assert sign_in(bare).status_code == 303
        answer = bare.get("/api/v1/apps")
        assert answer.status_code == 503
        assert "not migrated yet (its clickstream-migrate job has not run)" in (
            answer.get_json()["error"])


def test_the_apps_api_is_described_and_fuzzing_it_finds_no_server_error(app, admin):
    token = api_token(admin, "admin")
    schema = openapi.from_wsgi("/openapi.json", app)
    spec = admin.get("/openapi.json").get_json()
    # Apps and keys; destinations and events: test_pilot_destinations.py.
    theirs = ("/destinations", "/events")
    routes = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/apps")
              and not any(part in rule.rule for part in theirs)
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert len(routes) == 7
    assert routes == {(path, method) for path, item in spec["paths"].items()
                      if path.startswith("/api/v1/apps")
                      and not any(part in path for part in theirs) for method in item}
    seen: Counter[int] = Counter()
    operations = [r.ok() for r in schema.get_all_operations()]
    for operation in operations:
        if operation.path.startswith("/api/v1/apps") and not any(
                part in operation.path for part in theirs):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, mode, {"Authorization": f"Bearer {token}"}, seen)
    assert seen[200] and seen[201] and seen[400] and seen[404], seen
    assert seen[503] == 0, seen


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str],
         seen: Counter[int]) -> None:
    documented = {int(code) for code in operation.definition.raw["responses"]} | {404, 405}

    @hypothesis_settings(max_examples=20, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        seen[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        assert response.status_code < 500, f"{where}: {response.text[:300]}"
        assert response.status_code in documented, f"{where} (not in the spec)"
        response.json()

    try:
        check()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE


def test_settings_for_the_clickstream_database(tmp_path):
    (tmp_path / "key").write_text("k" * 40)
    (tmp_path / "token").write_text("t")
    (tmp_path / "cs").write_text("clickstream-password\n")
    base = {"PILOT_SECRET_KEY_FILE": str(tmp_path / "key"), "COMMANDER_URL": "http://c:8000",
            "COMMANDER_TOKEN_FILE": str(tmp_path / "token"), "POSTGRES_HOST": "postgres",
            "POSTGRES_SSLMODE": "disable", "POSTGRES_DSN": "dbname=pilot"}
    # module.yaml gives empty values when the module is disabled.
    assert Settings.from_env({**base, "CLICKSTREAM_POSTGRES_DB": "",
                              "CLICKSTREAM_POSTGRES_USER": "",
                              "CLICKSTREAM_POSTGRES_PASSWORD_FILE": ""}).clickstream_dsn is None
    enabled = Settings.from_env({**base, "CLICKSTREAM_POSTGRES_DB": "clickstream",
                                 "CLICKSTREAM_POSTGRES_USER": "clickstream",
                                 "CLICKSTREAM_POSTGRES_PASSWORD_FILE": str(tmp_path / "cs")})
    dsn = enabled.clickstream_dsn or ""
    for part in ("host=postgres", "dbname=clickstream", "user=clickstream",
                 "password=clickstream-password", "sslmode=disable"):
        assert part in dsn, dsn
    assert "clickstream-password" not in repr(enabled)
    with pytest.raises(SettingsError, match="CLICKSTREAM_POSTGRES_USER is not set"):
        Settings.from_env({**base, "CLICKSTREAM_POSTGRES_DB": "clickstream"})
