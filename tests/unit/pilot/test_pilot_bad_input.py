"""Bad input of every kind gets a clear 4xx page or JSON error: never a 500, never a
traceback."""

from __future__ import annotations

from pilot_testing import csrf_of, page_csrf

TRACEBACK = "Traceback"


def test_unknown_paths_are_404_pages_or_json(client, admin):
    for who in (client.application.test_client(), admin):
        page = who.get("/no/such/page")
        assert page.status_code == 404
        assert page.mimetype == "text/html"
        assert "There is nothing at /no/such/page." in page.get_data(as_text=True)
    api = admin.get("/api/v1/nothing")
    assert (api.status_code, api.mimetype) == (404, "application/json")
    assert api.get_json() == {"error": "There is nothing at /api/v1/nothing.", "status": 404}
    asks_json = admin.get("/nothing", headers={"Accept": "application/json"})
    assert asks_json.get_json()["status"] == 404


def test_wrong_methods_are_405_with_allow(admin):
    answer = admin.put("/releases")
    assert answer.status_code == 405
    assert "GET" in answer.headers["Allow"]
    assert admin.get("/logout").status_code == 405
    assert admin.delete("/api/v1/status").get_json()["status"] == 405


def test_bad_json_is_a_400_that_says_why(admin):
    headers = {"X-CSRF-Token": page_csrf(admin)}
    cases = [
        (b"{", "application/json", "the body is not valid JSON"),
        (b"\xff\xfe", "application/json", "the body is not valid JSON"),
        (b"[]", "application/json", "the body must be a JSON object"),
        (b'{"name": 5}', "application/json", "`name` must be a string"),
        (b'{"name": "x", "role": "viewer", "admin": true}', "application/json",
         "unknown field(s): admin"),
        (b'{"name": "a\\ud800b"}', "application/json",
         "`name` is not valid Unicode text (a lone surrogate)"),
        (b'{"name": "x"}', "text/plain", "Content-Type: application/json"),
        (b'{"name": "x", "expires_in_days": 1e3}', "application/json",
         "`expires_in_days` must be a whole number"),
    ]
    for body, content_type, message in cases:
        answer = admin.post("/api/v1/tokens", data=body, content_type=content_type,
                            headers=headers)
        assert answer.status_code == 400, body
        assert message in answer.get_json()["error"], (body, answer.get_json())


def test_too_large_bodies_are_413(admin):
    answer = admin.post("/api/v1/tokens", data=b"x" * 70_000, content_type="application/json",
                        headers={"X-CSRF-Token": page_csrf(admin)})
    assert answer.status_code == 413
    form = admin.post("/login", data={"username": "a" * 70_000})
    assert form.status_code == 413
    assert TRACEBACK not in form.get_data(as_text=True)


def test_bad_form_data_is_shown_next_to_the_field(admin):
    token = page_csrf(admin, "/users")
    answer = admin.post("/users", data={"username": "Not Valid!", "role": "root",
                                        "password": "short", "csrf_token": token})
    assert answer.status_code == 400
    page = answer.get_data(as_text=True)
    assert 'aria-invalid="true"' in page
    assert "User name: 1 to 63 characters" in page
    assert "Role: one of: admin, viewer" in page
    assert "Password: 12 to 1024 characters" in page
    taken = admin.post("/users", data={"username": "admin", "role": "viewer",
                                       "password": "long-enough-password", "csrf_token": token})
    assert taken.status_code == 409
    assert "there is already an account of that name" in taken.get_data(as_text=True)


def test_numbers_in_paths_that_are_not_numbers(admin):
    token = page_csrf(admin)
    for path in ("/releases/x/rollback", "/releases/-1/rollback", "/tokens/abc/revoke",
                 "/users/1e3/delete"):
        answer = admin.post(path, data={"csrf_token": token})
        assert answer.status_code == 404, path
    assert admin.post("/tokens/999/revoke", data={"csrf_token": token}).status_code == 404
    assert admin.post("/users/999/delete", data={"csrf_token": token}).status_code == 404


def test_an_admin_cannot_remove_the_last_admin_or_itself(admin, settings):
    import psycopg

    with psycopg.connect(settings.postgres_dsn) as conn:
        (me,) = conn.execute("SELECT id FROM pilot.users WHERE username = 'admin'").fetchone()
    answer = admin.post(f"/users/{me}/delete", data={"csrf_token": page_csrf(admin)})
    assert answer.status_code == 409
    assert "your own account" in answer.get_data(as_text=True)


def test_the_database_being_down_is_a_503_not_a_500(admin, postgres):
    postgres.stop()
    try:
        page = admin.get("/tokens")
        assert page.status_code == 503
        assert "Pilot&#39;s database is unavailable" in page.get_data(as_text=True)
        api = admin.get("/api/v1/tokens")
        assert api.status_code == 503 and "database is unavailable" in api.get_json()["error"]
        health = admin.get("/health")
        assert health.status_code == 503
        assert health.get_json()["status"] == "unavailable"
        assert health.get_json()["checks"]["postgres"] != "ok"
    finally:
        postgres.start()
    assert admin.get("/tokens").status_code == 200  # back, with the same session


def test_the_password_change_form(admin):
    token = page_csrf(admin)
    cases = [({"current_password": "", "new_password": "", "confirm_password": ""}, 400,
              "Current password: required"),
             ({"current_password": "x", "new_password": "long-enough-password",
               "confirm_password": "different-password"}, 400, "does not match"),
             ({"current_password": "wrong-password", "new_password": "long-enough-password",
               "confirm_password": "long-enough-password"}, 401, "wrong password")]
    for data, status, message in cases:
        answer = admin.post("/account/password", data={**data, "csrf_token": token})
        assert answer.status_code == status, data
        assert message in answer.get_data(as_text=True)


def test_control_characters_are_refused_not_stored(client, admin):
    """NUL cannot be stored in a text column: it is a 400, not a database error."""
    form = client.application.test_client()
    token = csrf_of(form.get("/login"))
    answer = form.post("/login", data={"username": "ad\x00min", "password": "x",
                                       "csrf_token": token})
    assert answer.status_code == 400
    page = admin.post("/tokens", data={"name": "a\x00b", "csrf_token": page_csrf(admin)})
    assert page.status_code == 400
    assert "Name: no control characters" in page.get_data(as_text=True)
    api = admin.post("/api/v1/tokens", json={"name": "a\x00b"},
                     headers={"X-CSRF-Token": page_csrf(admin)})
    assert api.status_code == 400 and "control character" in api.get_json()["error"]
