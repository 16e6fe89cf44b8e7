"""Signing in and out, sessions and their cookies, CSRF and the login rate limit, on
the real Postgres (see conftest.py)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from flask.testing import FlaskClient
from pilot_testing import ADMIN_PASSWORD, add_user, csrf_of, page_csrf, pilot_settings, sign_in

from pilot import sessions
from pilot.app import create_app
from pilot.settings import LoginLimits


def session_cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(sessions.COOKIE)
    return cookie.value if cookie else None


def test_pages_want_a_session_and_the_api_a_token(client):
    answer = client.get("/releases?x=1")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/login?next=%2Freleases%3Fx%3D1"
    api = client.get("/api/v1/status")
    assert api.status_code == 401
    assert api.headers["WWW-Authenticate"] == 'Bearer realm="pilot"'
    assert api.get_json()["status"] == 401
    assert client.get("/health").status_code == 200
    assert client.get("/login").status_code == 200


def test_admin_signs_in_with_the_secret_and_lands_where_it_was_going(client):
    answer = sign_in(client, next_path="/releases")
    assert (answer.status_code, answer.headers["Location"]) == (303, "/releases")
    header = next(v for k, v in answer.headers.items()
                  if k == "Set-Cookie" and v.startswith(f"{sessions.COOKIE}="))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
    assert "Max-Age=43200" in header  # 12 hours
    assert "Secure" not in header  # plain http, and no proxy said https
    me = client.get("/api/v1/me").get_json()
    assert (me["username"], me["role"], me["via"]) == ("admin", "admin", "session")


def test_the_cookie_is_secure_over_https_and_behind_an_https_proxy(app, settings):
    for environ in ({"base_url": "https://pilot.example"},
                    {"headers": {"X-Forwarded-Proto": "https"}}):
        client = app.test_client()
        answer = sign_in(client, **environ)
        assert answer.status_code == 303
        cookies = [v for k, v in answer.headers.items() if k == "Set-Cookie"]
        assert all("Secure" in c for c in cookies), cookies
    always = create_app(pilot_settings(settings.postgres_dsn, settings.commander_url,
                                       cookie_secure="always")).test_client()
    cookies = [v for k, v in sign_in(always).headers.items() if k == "Set-Cookie"]
    assert all("Secure" in c for c in cookies), cookies


def test_wrong_passwords_and_unknown_users_look_the_same(client):
    wrong = sign_in(client, password="not-the-password")
    unknown = sign_in(client, username="nobody", password="not-the-password")
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert "Wrong user name or password." in answer.get_data(as_text=True)
    assert session_cookie(client) is None
    empty = sign_in(client, username="", password="")
    assert empty.status_code == 400
    assert "enter your user name" in empty.get_data(as_text=True)


def test_the_login_form_needs_its_csrf_token(client):
    client.get("/login")
    for token in (None, "forged"):
        data = {"username": "admin", "password": ADMIN_PASSWORD}
        if token:
            data["csrf_token"] = token
        answer = client.post("/login", data=data)
        assert answer.status_code == 400
        assert "has expired or did not come from Pilot" in answer.get_data(as_text=True)
    # A token without its cookie (another browser's form) is no good either.
    other = csrf_of(client.get("/login"))
    client.delete_cookie("pilot_login", path="/login")
    assert client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                       "csrf_token": other}).status_code == 400
    assert session_cookie(client) is None


def test_forms_of_a_session_need_its_csrf_token(admin):
    token = page_csrf(admin)
    for data in ({}, {"csrf_token": "x" * 64}):
        answer = admin.post("/tokens", data={"name": "t", **data})
        assert answer.status_code == 400
        assert "security token (CSRF)" in answer.get_data(as_text=True)
    assert admin.post("/tokens", data={"name": "t", "csrf_token": token}).status_code == 201
    # The API's changes by a browser session need it as a header.
    assert admin.post("/api/v1/tokens", json={"name": "t"}).status_code == 400
    assert admin.post("/api/v1/tokens", json={"name": "t"},
                      headers={"X-CSRF-Token": token}).status_code == 201


def test_a_login_starts_a_new_session_and_ends_the_old_one(client, settings):
    sign_in(client)
    first = session_cookie(client)
    csrf_first = page_csrf(client)
    # A second login by the same browser, its session cookie still there.
    client.delete_cookie(sessions.COOKIE)
    token = csrf_of(client.get("/login"))
    client.set_cookie(sessions.COOKIE, first)
    assert client.post("/login", data={"username": "admin", "password": ADMIN_PASSWORD,
                                       "csrf_token": token}).status_code == 303
    second = session_cookie(client)
    assert first and second and first != second
    assert page_csrf(client) != csrf_first
    replay = client.application.test_client()
    replay.set_cookie(sessions.COOKIE, first)
    assert replay.get("/").status_code == 303  # the old id is dead
    # A session id set before login is never adopted: the server makes its own.
    fixed = client.application.test_client()
    fixed.set_cookie(sessions.COOKIE, "attacker-chosen")
    sign_in(fixed)
    assert session_cookie(fixed) not in ("attacker-chosen", None)


def test_logout_ends_the_session_on_the_server(client):
    sign_in(client)
    stolen = session_cookie(client)
    answer = client.post("/logout", data={"csrf_token": page_csrf(client)})
    assert (answer.status_code, answer.headers["Location"]) == (303, "/login?notice=signed-out")
    assert session_cookie(client) is None
    assert "You are signed out." in client.get("/login?notice=signed-out").get_data(
        as_text=True)
    replay = client.application.test_client()
    replay.set_cookie(sessions.COOKIE, stolen)
    assert replay.get("/api/v1/me").status_code == 401


def test_logout_wants_the_csrf_token(admin):
    assert admin.post("/logout").status_code == 400
    assert admin.get("/api/v1/me").status_code == 200


def test_an_expired_session_asks_to_sign_in_again(admin, settings):
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute("UPDATE pilot.sessions SET expires_at = now() - %s",
                     (timedelta(seconds=1),))
    page = admin.get("/releases")
    assert page.status_code == 303
    assert page.headers["Location"] == "/login?next=%2Freleases&reason=expired"
    assert "Your session has expired" in admin.get(page.headers["Location"]).get_data(
        as_text=True)
    sign_in(admin)
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute("UPDATE pilot.sessions SET expires_at = now() - interval '1 second'")
    api = admin.get("/api/v1/me")
    assert (api.status_code, api.get_json()["error"]) == (
        401, "your session has expired; sign in again")
    form = admin.post("/tokens", data={"name": "x", "csrf_token": "whatever"})
    assert form.status_code == 401
    assert "nothing was done" in form.get_data(as_text=True)
    assert session_cookie(admin) is None  # the dead cookie is cleared


def test_a_cookie_not_signed_with_the_key_is_refused(admin, settings):
    value = session_cookie(admin)
    assert value
    admin.set_cookie(sessions.COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert admin.get("/api/v1/me").status_code == 401
    other_key = create_app(pilot_settings(settings.postgres_dsn, settings.commander_url,
                                          secret_key="another-key-entirely-0123456789"))
    stranger = other_key.test_client()
    stranger.set_cookie(sessions.COOKIE, value)
    assert stranger.get("/api/v1/me").status_code == 401


def test_next_never_leaves_the_site(client):
    for target in ("https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x"):
        client.delete_cookie(sessions.COOKIE)
        answer = sign_in(client, next_path=target)
        assert answer.headers["Location"] == "/", target


def test_failed_logins_are_limited_per_account(client, settings):
    for _ in range(5):
        assert sign_in(client, password="wrong-password").status_code == 401
    limited = sign_in(client)  # even the right password, now
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 900
    assert "Too many failed sign-ins for this account" in limited.get_data(as_text=True)
    # The limit is in Postgres: another replica refuses too; other accounts still work.
    other = create_app(settings).test_client()
    assert sign_in(other).status_code == 429
    add_user_client = create_app(settings).test_client()
    with psycopg.connect(settings.postgres_dsn) as conn:
        conn.execute("DELETE FROM pilot.login_failures WHERE scope = 'account'")
    assert sign_in(add_user_client).status_code == 303
    add_user(add_user_client, "viewer1")
    for _ in range(5):
        sign_in(other, password="wrong-password")
    assert sign_in(other, "viewer1", "viewer-password-0123").status_code == 303


def test_a_success_clears_the_accounts_failures(client):
    for _ in range(4):
        assert sign_in(client, password="wrong-password").status_code == 401
    assert sign_in(client).status_code == 303
    for _ in range(4):
        assert sign_in(client, password="wrong-password").status_code == 401
    assert sign_in(client).status_code == 303


def test_failed_logins_are_limited_per_address(settings):
    app = create_app(pilot_settings(settings.postgres_dsn, settings.commander_url,
                                    login_limits=LoginLimits(per_account=100, per_address=3)))
    client = app.test_client()
    for name in ("a1", "a2", "a3"):
        assert sign_in(client, name, "wrong-password").status_code == 401
    limited = sign_in(client)
    assert limited.status_code == 429
    assert "for this address" in limited.get_data(as_text=True)
    # The address is the client's as the gateway saw it (X-Forwarded-For, one proxy).
    elsewhere = {"headers": {"X-Forwarded-For": "203.0.113.9"}}
    assert sign_in(app.test_client(), **elsewhere).status_code == 303


def test_viewers_see_but_do_not_act(admin, client, commander):
    add_user(admin, "watcher")
    viewer = client.application.test_client()
    assert sign_in(viewer, "watcher", "viewer-password-0123").status_code == 303
    assert viewer.get("/").status_code == 200
    assert viewer.get("/releases").status_code == 200
    releases = viewer.get("/releases").get_data(as_text=True)
    assert "Roll back to" not in releases
    assert viewer.get("/releases/1/rollback").status_code == 403
    token = page_csrf(viewer)
    refused = viewer.post("/releases/1/rollback", data={"csrf_token": token})
    assert refused.status_code == 403
    assert "watcher is a viewer" in refused.get_data(as_text=True)
    assert viewer.post("/api/v1/rollback", json={"revision": 1},
                       headers={"X-CSRF-Token": token}).status_code == 403
    assert viewer.get("/users").status_code == 403
    assert commander.commander.store.all() == []  # nothing reached Commander


def test_the_secret_admin_password_is_never_in_a_page(admin):
    for path in ("/", "/releases", "/tokens", "/users", "/account"):
        assert ADMIN_PASSWORD not in admin.get(path).get_data(as_text=True)
