"""API tokens: made on the page or by the API, shown once, kept as a hash, listed by
prefix, revoked for good; what a token may do is its owner's role or less."""

from __future__ import annotations

import hashlib
import re

import psycopg
from pilot_testing import add_user, page_csrf, sign_in


def make_token(client, name: str = "deploy script", role: str = "viewer",
               days: str = "") -> str:
    answer = client.post("/tokens", data={"name": name, "role": role, "expires_in_days": days,
                                          "csrf_token": page_csrf(client, "/tokens")})
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.headers["Cache-Control"] == "no-store"
    found = re.search(r'value="(pilot_[A-Za-z0-9_-]+)"', answer.get_data(as_text=True))
    assert found
    return found[1]


def bearer(token: str) -> dict[str, dict[str, str]]:
    return {"headers": {"Authorization": f"Bearer {token}"}}


def test_a_token_is_shown_once_and_kept_hashed(admin, settings):
    token = make_token(admin, role="admin")
    listing = admin.get("/tokens").get_data(as_text=True)
    assert token not in listing
    assert token[:12] + "…" in listing
    with psycopg.connect(settings.postgres_dsn) as conn:
        stored = conn.execute("SELECT token_hash, prefix FROM pilot.api_tokens").fetchall()
    assert stored == [(hashlib.sha256(token.encode()).digest(), token[:12])]
    fresh = admin.application.test_client()
    me = fresh.get("/api/v1/me", **bearer(token)).get_json()
    assert (me["username"], me["role"], me["via"]) == ("admin", "admin", "token")
    tokens = fresh.get("/api/v1/tokens", **bearer(token)).get_json()["tokens"]
    assert [(t["name"], t["state"], t["owner"]) for t in tokens] == [
        ("deploy script", "active", "admin")]
    assert tokens[0]["last_used_at"] is not None
    assert "token" not in tokens[0]


def test_a_revoked_token_is_refused(admin):
    token = make_token(admin)
    api = admin.application.test_client()
    assert api.get("/api/v1/me", **bearer(token)).status_code == 200
    token_id = api.get("/api/v1/tokens", **bearer(token)).get_json()["tokens"][0]["id"]
    answer = admin.post(f"/tokens/{token_id}/revoke", data={"csrf_token": page_csrf(admin)})
    assert (answer.status_code, answer.headers["Location"]) == (303, "/tokens?notice=revoked")
    refused = api.get("/api/v1/me", **bearer(token))
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "the bearer token is unknown, revoked or expired"
    assert "revoked" in admin.get("/tokens").get_data(as_text=True)


def test_tokens_by_the_api_and_revoked_by_the_api(admin):
    csrf = {"X-CSRF-Token": page_csrf(admin)}
    made = admin.post("/api/v1/tokens", json={"name": "ci", "expires_in_days": 30},
                      headers=csrf)
    assert made.status_code == 201
    body = made.get_json()
    assert body["token"].startswith("pilot_") and body["role"] == "viewer"
    assert body["expires_at"] is not None
    assert made.headers["Location"] == f"/api/v1/tokens/{body['id']}"
    api = admin.application.test_client()
    # A token makes no token: one that never expires would outlive it.
    refused = api.post("/api/v1/tokens", json={"name": "second"}, **bearer(body["token"]))
    assert refused.status_code == 403
    assert "not by another token" in refused.get_json()["error"]
    other = admin.post("/api/v1/tokens", json={"name": "second", "role": "admin"},
                       headers=csrf)
    assert other.status_code == 201
    # A token needs no CSRF header: a browser never sends Authorization by itself.
    revoked = api.delete(f"/api/v1/tokens/{body['id']}", **bearer(other.get_json()["token"]))
    assert (revoked.status_code, revoked.get_json()["state"]) == (200, "revoked")
    assert api.get("/api/v1/me", **bearer(body["token"])).status_code == 401


def test_an_expired_token_is_refused(admin, settings):
    token = make_token(admin, days="1")
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute("UPDATE pilot.api_tokens SET expires_at = now() - interval '1 second'")
    assert admin.application.test_client().get("/api/v1/me", **bearer(token)).status_code == 401
    assert "expired" in admin.get("/tokens").get_data(as_text=True)


def test_a_viewer_makes_viewer_tokens_only_and_sees_only_its_own(admin):
    mine = make_token(admin, "admin's")
    add_user(admin, "viewer1")
    viewer = admin.application.test_client()
    sign_in(viewer, "viewer1", "viewer-password-0123")
    refused = viewer.post("/tokens", data={"name": "x", "role": "admin",
                                           "csrf_token": page_csrf(viewer, "/tokens")})
    assert refused.status_code == 400
    assert "Role: one of: viewer" in refused.get_data(as_text=True)
    token = make_token(viewer, "viewer's")
    listed = viewer.get("/api/v1/tokens", **bearer(token)).get_json()["tokens"]
    assert [t["name"] for t in listed] == ["viewer's"]
    # Nobody else's token can be revoked, nor learnt to exist.
    admins = admin.get("/api/v1/tokens").get_json()["tokens"]
    theirs = next(t["id"] for t in admins if t["name"] == "admin's")
    assert viewer.delete(f"/api/v1/tokens/{theirs}", **bearer(token)).status_code == 404
    assert admin.application.test_client().get("/api/v1/me", **bearer(mine)).status_code == 200
    assert {t["name"] for t in admins} == {"admin's", "viewer's"}  # an admin sees all


def test_a_viewer_token_of_an_admin_cannot_act(admin, commander):
    token = make_token(admin, role="viewer")
    api = admin.application.test_client()
    assert api.get("/api/v1/releases", **bearer(token)).status_code == 200
    assert api.post("/api/v1/rollback", json={"revision": 1},
                    **bearer(token)).status_code == 403
    assert commander.commander.store.all() == []


def test_deleting_an_account_ends_its_tokens_and_sessions(admin, settings):
    add_user(admin, "leaver")
    leaver = admin.application.test_client()
    sign_in(leaver, "leaver", "viewer-password-0123")
    token = make_token(leaver)
    with psycopg.connect(settings.postgres_dsn) as conn:
        (user_id,) = conn.execute("SELECT id FROM pilot.users WHERE username = 'leaver'"
                                  ).fetchone()
    answer = admin.post(f"/users/{user_id}/delete", data={"csrf_token": page_csrf(admin)})
    assert answer.status_code == 303
    assert leaver.get("/api/v1/me").status_code == 401
    assert leaver.get("/api/v1/me", **bearer(token)).status_code == 401


def test_malformed_authorization_is_a_401(client):
    for header in ("Bearer", "Bearer ", "Bearer pilot_", "Bearer x" * 100, "Bearer ünï",
                   "bearer pilot_" + "A" * 43):
        answer = client.get("/api/v1/me", headers={"Authorization": header})
        assert answer.status_code == 401, header
        assert answer.get_json()["status"] == 401


def test_token_form_errors_are_shown_next_to_their_field(admin):
    answer = admin.post("/tokens", data={"name": "", "expires_in_days": "0",
                                         "csrf_token": page_csrf(admin, "/tokens")})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert 'id="e-name" class="error">Name: required' in page
    assert "Expires after (days): a whole number from 1 to 3650" in page
    bad = admin.post("/api/v1/tokens", json={"name": "x", "role": "root"},
                     headers={"X-CSRF-Token": page_csrf(admin)})
    assert (bad.status_code, bad.get_json()["error"]) == (
        400, "`role` must be one of admin, viewer")
