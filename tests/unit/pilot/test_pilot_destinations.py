"""A clickstream app's destinations in Pilot: added on the page or by the API with the
settings clickstream's workers accept (errors next to their field), listed with their
delivery counts, enabled and disabled, their event filters changed, deleted after a
confirmation, their dead letters replayed; viewers look, only admins change; bad input
is a clear 4xx, never a 500.

The clickstream database is a real one of its own, migrated by clickstream's own
migrations, and what Pilot wrote is read back with clickstream.storage, as the router
and workers read it. Dead letters are real: the clickstream pipeline's processes (Event
API, router, webhook worker) on the test bed's Kafka give up on events a webhook refuses,
as clickstream's own tests make them; Pilot's replay button sends them again.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
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
from clickstream.routing import passes_filters
from pilot.app import create_app
from pilot.settings import Settings
from tests.infra.http_sink import HttpSink
from tests.integration.clickstream.pipeline import Pipeline

CSRF_REFUSED = "security token (CSRF) is missing or does not match"
VIEWER_PASSWORD = "viewer-password-0123"
# As clickstream's own dead-letter test: retried for long, so a 400 is what gives up.
PATIENT = {"max_attempts": 1000, "retry_window_seconds": 600, "initial_backoff_seconds": 0.2,
           "max_backoff_seconds": 2}


@pytest.fixture
def clickstream_dsn(postgres) -> Iterator[str]:
    with postgres.fresh_database() as dsn:
        migrate(dsn)
        yield dsn


@pytest.fixture
def settings(pg_database, commander, clickstream_dsn) -> Settings:
    """Pilot with the clickstream module enabled, without its Kafka (no replay here)."""
    return pilot_settings(pg_database, commander.url, clickstream_dsn=clickstream_dsn)


def new_app(dsn: str, name: str = "web shop") -> int:
    with psycopg.connect(dsn) as conn:
        return storage.create_app(conn, name).id


def stored(dsn: str, app_id: int) -> list[storage.Destination]:
    with psycopg.connect(dsn) as conn:
        return storage.list_destinations(conn, app_id)


def words(answer: TestResponse) -> str:
    return " ".join(answer.get_data(as_text=True).split())


def webhook_form(client: FlaskClient, app_id: int, **fields: Any) -> TestResponse:
    data = {"kind": "webhook", "name": "Order hook", "url": "https://hooks.example.com/in",
            "enabled": "on", "csrf_token": page_csrf(client, f"/apps/{app_id}")}
    data.update(fields)
    return client.post(f"/apps/{app_id}/destinations",
                       data={k: v for k, v in data.items() if v is not None})


def destination_id_of(answer: TestResponse) -> int:
    found = re.fullmatch(r"/apps/\d+/destinations/(\d+)\?notice=created",
                         answer.headers.get("Location", ""))
    assert found, (answer.status_code, answer.get_data(as_text=True)[-2000:])
    return int(found[1])


def signed_in_viewer(admin: FlaskClient) -> FlaskClient:
    add_user(admin, "viewer1", password=VIEWER_PASSWORD)
    viewer = admin.application.test_client()
    assert sign_in(viewer, "viewer1", VIEWER_PASSWORD).status_code == 303
    return viewer


def api_token(client: FlaskClient, role: str) -> str:
    made = client.post("/api/v1/tokens", json={"name": f"{role} script", "role": role},
                       headers={"X-CSRF-Token": page_csrf(client)})
    assert made.status_code == 201
    return made.get_json()["token"]


def test_a_webhook_is_added_on_the_page_and_stored_as_the_workers_read_it(admin,
                                                                          clickstream_dsn):
    app_id = new_app(clickstream_dsn)
    page = words(admin.get(f"/apps/{app_id}"))
    assert "No destinations yet" in page and "Add one below." in page
    assert f'href="/apps/{app_id}/destinations/new?kind=webhook"' in page
    form = admin.get(f"/apps/{app_id}/destinations/new?kind=webhook")
    assert form.status_code == 200
    text = form.get_data(as_text=True)
    assert 'name="url"' in text and 'name="secret"' in text and 'name="batch_size"' in text
    assert 'name="dsn"' not in text and 'name="enabled" checked' in text

    answer = webhook_form(admin, app_id, secret="s3cret-signing-key", batch_size="20",
                          timeout_seconds="2.5", max_attempts="5", types=["track", "identify"],
                          events="Signed Up, Order Completed ,")
    assert answer.status_code == 303
    destination_id = destination_id_of(answer)
    (made,) = stored(clickstream_dsn, app_id)
    assert (made.id, made.name, made.kind, made.enabled) == (destination_id, "Order hook",
                                                             "webhook", True)
    assert made.settings == {"url": "https://hooks.example.com/in", "batch_size": 20,
                             "timeout_seconds": 2.5, "max_attempts": 5}
    assert made.secret == "s3cret-signing-key"
    assert made.filters == {"types": ["track", "identify"],
                            "events": ["Signed Up", "Order Completed"]}
    # The router's own filter function keeps to them.
    assert passes_filters({"type": "track", "event": "Signed Up"}, made.filters)
    assert not passes_filters({"type": "track", "event": "Viewed"}, made.filters)
    assert not passes_filters({"type": "page"}, made.filters)

    shown = admin.get(answer.headers["Location"])
    assert shown.status_code == 200
    text = words(shown)
    assert "The destination was added" in text and "https://hooks.example.com/in" in text
    assert "set (not shown)" in text and "s3cret-signing-key" not in shown.get_data(
        as_text=True)
    listing = words(admin.get(f"/apps/{app_id}"))
    assert (f'<a href="/apps/{app_id}/destinations/{destination_id}">Order hook</a></th> '
            '<td>Webhook</td> <td><span class="state state-enabled">enabled</span></td>'
            in listing)
    api = admin.get(f"/api/v1/apps/{app_id}/destinations").get_json()
    assert api == {"destinations": [{
        "id": destination_id, "app_id": app_id, "name": "Order hook", "kind": "webhook",
        "enabled": True, "settings": made.settings, "secret": "set",
        "filters": {"types": ["track", "identify"], "events": ["Signed Up", "Order Completed"]},
        "delivery": {"delivered": 0, "retried": 0, "dead_lettered": 0, "replayed": 0,
                     "waiting_for_replay": 0, "last_delivered_at": None, "last_error": None,
                     "last_error_at": None}}]}


def test_warehouse_and_redis_destinations_by_the_api_passwords_masked(admin, clickstream_dsn):
    app_id = new_app(clickstream_dsn)
    token = api_token(admin, "admin")
    api = admin.application.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    made = api.post(f"/api/v1/apps/{app_id}/destinations", headers=bearer, json={
        "name": "Warehouse", "kind": "warehouse", "enabled": False,
        "settings": {"dsn": "postgresql://loader:hunter2@wh.example.com/events",
                     "schema": "shop_events", "batch_size": 500, "flush_seconds": 0.5,
                     "load": "batch"}})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert made.headers["Location"] == f"/api/v1/apps/{app_id}/destinations/{body['id']}"
    assert body["settings"]["dsn"] == "postgresql://loader:***@wh.example.com/events"
    assert (body["enabled"], body["secret"], body["filters"]) == (
        False, None, {"types": [], "events": []})
    profiles = api.post(f"/api/v1/apps/{app_id}/destinations", headers=bearer, json={
        "name": "Profiles", "kind": "redis", "settings": {"key_prefix": "shop"},
        "filters": {"types": ["identify"]}})
    assert profiles.status_code == 201
    by_id = {d.id: d for d in stored(clickstream_dsn, app_id)}
    warehouse = by_id[body["id"]]
    assert warehouse.settings["dsn"] == "postgresql://loader:hunter2@wh.example.com/events"
    assert warehouse.settings["load"] == "batch"
    assert not warehouse.enabled
    redis_dest = by_id[profiles.get_json()["id"]]
    assert (redis_dest.kind, redis_dest.settings, redis_dest.filters, redis_dest.enabled) == (
        "redis", {"key_prefix": "shop"}, {"types": ["identify"]}, True)
    listed = api.get(f"/api/v1/apps/{app_id}/destinations", headers=bearer).get_json()
    assert [d["name"] for d in listed["destinations"]] == ["Warehouse", "Profiles"]
    page = admin.get(f"/apps/{app_id}/destinations/{body['id']}").get_data(as_text=True)
    assert "loader:***@wh.example.com" in page and "hunter2" not in page
    assert "hunter2" not in admin.get(f"/apps/{app_id}").get_data(as_text=True)
    one = api.get(f"/api/v1/apps/{app_id}/destinations/{body['id']}", headers=bearer)
    assert one.get_json() == body


def test_enable_disable_and_filters_change_what_the_router_reads(admin, clickstream_dsn):
    app_id = new_app(clickstream_dsn)
    destination_id = destination_id_of(webhook_form(admin, app_id))
    base = f"/apps/{app_id}/destinations/{destination_id}"
    token = page_csrf(admin, base)
    assert 'value="no"' in admin.get(base).get_data(as_text=True)  # the Disable button

    off = admin.post(f"{base}/enabled", data={"enabled": "no", "csrf_token": token})
    assert (off.status_code, off.headers["Location"]) == (303, f"{base}?notice=disabled")
    assert not stored(clickstream_dsn, app_id)[0].enabled
    assert "The destination is disabled" in words(admin.get(off.headers["Location"]))
    on = admin.patch(f"/api/v1{base}", json={"enabled": True},
                     headers={"X-CSRF-Token": token})
    assert on.status_code == 200 and on.get_json()["enabled"] is True
    assert stored(clickstream_dsn, app_id)[0].enabled

    saved = admin.post(f"{base}/filters", data={"types": ["track"], "events": "Checkout",
                                                "csrf_token": token})
    assert (saved.status_code, saved.headers["Location"]) == (303, f"{base}?notice=filters")
    assert stored(clickstream_dsn, app_id)[0].filters == {"types": ["track"],
                                                          "events": ["Checkout"]}
    page = admin.get(saved.headers["Location"]).get_data(as_text=True)
    assert 'value="track" checked' in page and 'value="Checkout"' in page
    assert 'value="page" checked' not in page
    # Cleared, everything goes through again.
    admin.post(f"{base}/filters", data={"events": "", "csrf_token": token})
    assert stored(clickstream_dsn, app_id)[0].filters == {}
    changed = admin.patch(f"/api/v1{base}", json={"filters": {"events": ["A", "B", "A"]}},
                          headers={"X-CSRF-Token": token})
    assert changed.get_json()["filters"] == {"types": [], "events": ["A", "B"]}
    assert stored(clickstream_dsn, app_id)[0].filters == {"events": ["A", "B"]}
    both = admin.patch(f"/api/v1{base}", json={"enabled": False, "filters": {}},
                       headers={"X-CSRF-Token": token})
    assert (both.get_json()["enabled"], both.get_json()["filters"]) == (
        False, {"types": [], "events": []})
    unchanged = admin.patch(f"/api/v1{base}", json={}, headers={"X-CSRF-Token": token})
    assert unchanged.status_code == 200 and unchanged.get_json()["enabled"] is False


def test_delete_asks_first_then_deletes(admin, clickstream_dsn):
    app_id = new_app(clickstream_dsn)
    first = destination_id_of(webhook_form(admin, app_id))
    second = destination_id_of(webhook_form(admin, app_id, name="Second"))
    with psycopg.connect(clickstream_dsn) as conn:
        storage.record_delivery_state(conn, first, storage.DeliveryCounts(dead_lettered=3))
    confirm = admin.get(f"/apps/{app_id}/destinations/{first}/delete")
    assert confirm.status_code == 200
    text = words(confirm)
    assert f'action="/apps/{app_id}/destinations/{first}/delete"' in text
    assert "It has 3 dead letters not replayed" in text
    assert len(stored(clickstream_dsn, app_id)) == 2  # asking changes nothing
    done = admin.post(f"/apps/{app_id}/destinations/{first}/delete",
                      data={"csrf_token": page_csrf(admin)})
    assert (done.status_code, done.headers["Location"]) == (
        303, f"/apps/{app_id}?notice=destination-deleted")
    assert "The destination was deleted" in words(admin.get(done.headers["Location"]))
    assert [d.id for d in stored(clickstream_dsn, app_id)] == [second]
    assert admin.get(f"/apps/{app_id}/destinations/{first}").status_code == 404
    gone = admin.delete(f"/api/v1/apps/{app_id}/destinations/{second}",
                        headers={"X-CSRF-Token": page_csrf(admin)})
    assert (gone.status_code, gone.get_json()["name"]) == (200, "Second")
    assert stored(clickstream_dsn, app_id) == []
    again = admin.delete(f"/api/v1/apps/{app_id}/destinations/{second}",
                         headers={"X-CSRF-Token": page_csrf(admin)})
    assert again.status_code == 404


def test_delivery_counts_and_dead_letters_are_shown(admin, clickstream_dsn):
    app_id = new_app(clickstream_dsn)
    destination_id = destination_id_of(webhook_form(admin, app_id))
    with psycopg.connect(clickstream_dsn) as conn:
        storage.record_delivery_state(conn, destination_id, storage.DeliveryCounts(
            delivered=41, retried=7, dead_lettered=5, replayed=2,
            last_error="HTTP 500 from https://hooks.example.com/in"))
    page = words(admin.get(f"/apps/{app_id}/destinations/{destination_id}"))
    assert "<h2>Delivered</h2> <p class=\"big\">41</p>" in page
    assert "7 attempts retried" in page
    assert ("<p class=\"big\">3</p> <p>waiting for replay (5 given up on, 2 replayed)</p>"
            in page)
    assert "HTTP 500 from https://hooks.example.com/in" in page
    # Without the module's Kafka, the page says why there is no replay button.
    assert "Replaying needs the clickstream module's Kafka" in page
    listing = words(admin.get(f"/apps/{app_id}"))
    assert ('<td class="num">41</td> <td class="num">7</td> <td class="num">'
            '<span class="state state-failed">3</span></td>' in listing)
    delivery = admin.get(f"/api/v1/apps/{app_id}/destinations/{destination_id}").get_json()[
        "delivery"]
    assert (delivery["delivered"], delivery["waiting_for_replay"]) == (41, 3)
    assert delivery["last_error_at"] is not None
    refused = admin.post(f"/api/v1/apps/{app_id}/destinations/{destination_id}/replay",
                         headers={"X-CSRF-Token": page_csrf(admin)})
    assert refused.status_code == 503
    assert "KAFKA_BOOTSTRAP is empty" in refused.get_json()["error"]


def test_bad_form_input_is_shown_next_to_its_field(admin, clickstream_dsn):
    app_id = new_app(clickstream_dsn)
    webhook_form(admin, app_id, name="Taken")
    cases = [
        ({"name": ""}, 400, "Name: required"),
        ({"name": "x" * 101}, 400, "Name: at most 100 characters"),
        ({"url": ""}, 400, "URL: required"),
        # clickstream's own check, its message next to the field.
        ({"url": "ftp://files.example.com/x"}, 400,
         "URL: webhook url must be http(s), not ftp:"),
        ({"url": "https://"}, 400, "URL: an http(s) URL with a host name"),
        ({"batch_size": "0"}, 400, "Events per request: a whole number from 1 to 1000"),
        ({"timeout_seconds": "soon"}, 400, "Timeout (s): a number from 0.1 to 300"),
        ({"timeout_seconds": "nan"}, 400, "Timeout (s): a number from 0.1 to 300"),
        ({"max_attempts": "0"}, 400, "Attempts before giving up: a whole number from 1"),
        ({"types": ["track", "click"]}, 400, "Event types: only these: track, identify"),
        ({"events": "a\x00b"}, 400, "Track events: no control characters"),
        ({"events": ",".join(["e"] * 101)}, 400, "Track events: at most 100 names"),
        ({"name": "Taken"}, 409, "Name: the app has a destination of that name already"),
    ]
    for fields, status, message in cases:
        answer = webhook_form(admin, app_id, **fields)
        assert answer.status_code == status, (fields, answer.get_data(as_text=True)[-1500:])
        page = answer.get_data(as_text=True)
        assert message in page, (fields, page[-3000:])
        assert 'aria-invalid="true"' in page or 'class="field checks invalid"' in page
    warehouse = admin.post(f"/apps/{app_id}/destinations", data={
        "kind": "warehouse", "name": "W", "dsn": "postgresql://wh/db", "schema": "Events",
        "csrf_token": page_csrf(admin)})
    assert warehouse.status_code == 400
    assert ("Schema: warehouse schema must be a lowercase identifier, not &#39;Events&#39;"
            in warehouse.get_data(as_text=True))
    no_dsn = admin.post(f"/apps/{app_id}/destinations", data={
        "kind": "warehouse", "name": "W", "csrf_token": page_csrf(admin)})
    assert "Postgres DSN: required" in no_dsn.get_data(as_text=True)
    assert [d.name for d in stored(clickstream_dsn, app_id)] == ["Taken"]
    assert admin.get(f"/apps/{app_id}/destinations/new?kind=kafka").status_code == 404
    # A filter left wrong on the destination's page is shown there, nothing saved.
    (taken,) = stored(clickstream_dsn, app_id)
    base = f"/apps/{app_id}/destinations/{taken.id}"
    wrong = admin.post(f"{base}/filters", data={"types": ["nope"], "events": "Kept",
                                                "csrf_token": page_csrf(admin)})
    assert wrong.status_code == 400
    assert "Event types: only these" in wrong.get_data(as_text=True)
    assert 'value="Kept"' in wrong.get_data(as_text=True)
    assert stored(clickstream_dsn, app_id)[0].filters == taken.filters


def test_bad_json_is_a_400_that_says_why(admin, clickstream_dsn):
    app_id = new_app(clickstream_dsn)
    headers = {"X-CSRF-Token": page_csrf(admin)}
    path = f"/api/v1/apps/{app_id}/destinations"
    hook = {"name": "Hook", "kind": "webhook", "settings": {"url": "https://h.example.com"}}
    assert admin.post(path, json=hook, headers=headers).status_code == 201
    cases = [
        ({"name": "A", "kind": "kafka"}, 400, "`kind` must be one of webhook, warehouse, redis"),
        ({"name": "A", "kind": "webhook"}, 400, "`settings.url`: required for a webhook"),
        ({"name": "A", "kind": "warehouse", "settings": {}}, 400,
         "`settings.dsn`: required for a warehouse"),
        ({"name": "", "kind": "redis"}, 400, "`name`: 1 to 100 characters"),
        ({"name": "A\u0000", "kind": "redis"}, 400, "`name`: no control characters"),
        ({"name": "A", "kind": "redis", "settings": {"url": 5}}, 400,
         "`settings.url`: a string"),
        ({"name": "A", "kind": "redis", "settings": {"dsn": "x"}}, 400,
         "`settings.dsn`: not a setting of a redis destination"),
        ({"name": "A", "kind": "warehouse", "settings": {"dsn": "x", "schema": 5}}, 400,
         "`settings.schema`: a string"),
        ({"name": "A", "kind": "webhook",
          "settings": {"url": "https://h.example.com", "headers": {"X-A": 1}}}, 400,
         "`settings.headers`: an object of names and text values"),
        ({"name": "A", "kind": "webhook",
          "settings": {"url": "https://h.example.com", "headers": {"X-A": "a\nb"}}}, 400,
         "without control characters"),
        ({"name": "A", "kind": "webhook",
          "settings": {"url": "https://h.example.com", "batch_size": True}}, 400,
         "`settings.batch_size`: a whole number"),
        ({"name": "A", "kind": "webhook",
          "settings": {"url": "https://h.example.com", "batch_size": 0}}, 400,
         "`settings.batch_size`: batch_size must be a positive integer"),
        ({"name": "A", "kind": "webhook", "settings": {"url": "mailto:x@example.com"}}, 400,
         "`settings.url`: webhook url must be http(s)"),
        ({"name": "A", "kind": "redis", "secret": "s"}, 400,
         "`secret`: only a webhook destination has a secret"),
        ({"name": "A", "kind": "redis", "filters": {"types": ["click"]}}, 400,
         "`filters.types`: event types among track"),
        ({"name": "A", "kind": "redis", "filters": {"events": "Signed Up"}}, 400,
         "`filters.events`: a JSON array"),
        ({"name": "A", "kind": "redis", "filters": {"events": [""]}}, 400,
         "`filters.events`: event names of 1 to 200 characters"),
        ({"name": "A", "kind": "redis", "filters": {"types": [{"a": 1}], "events": [[]]}},
         400, "`filters.types`: event types among track"),
        ({"name": "A", "kind": "redis", "filters": {"user": ["x"]}}, 400,
         "`filters`: unknown field(s): user"),
        ({"name": "A", "kind": "redis", "enabled": "yes"}, 400, "`enabled` must be true or false"),
        ({"name": "A", "kind": "redis", "settings": []}, 400, "`settings` must be a JSON object"),
        ({"name": "A", "kind": "redis", "owner": "me"}, 400, "unknown field(s): owner"),
        (hook, 409, "the app has a destination named 'Hook' already"),
    ]
    for body, status, message in cases:
        answer = admin.post(path, json=body, headers=headers)
        assert answer.status_code == status, (body, answer.get_json())
        assert message in answer.get_json()["error"], (body, answer.get_json())
    for raw in (b'{"name": "A", "kind": "redis", "settings": {"key_prefix": "a\\u0000"}}',
                b'{"name": "A", "kind": "redis", "settings": {"key_prefix": "\\ud800"}}',
                b'{"name": "A", "kind": "webhook", "settings": {"url": "https://h.example.com",'
                b' "timeout_seconds": NaN}}',
                b'{"name": "A", "kind": "webhook", "settings": {"url": "https://h.example.com",'
                b' "timeout_seconds": 1e999}}'):
        answer = admin.post(path, data=raw, content_type="application/json", headers=headers)
        assert answer.status_code == 400, (raw, answer.get_data(as_text=True))
    destination_id = stored(clickstream_dsn, app_id)[0].id
    item = f"{path}/{destination_id}"
    for body, message in (({"enabled": 1}, "`enabled` must be true or false"),
                          ({"name": "B"}, "unknown field(s): name"),
                          ({"filters": {"types": "track"}}, "`filters.types`: a JSON array")):
        answer = admin.patch(item, json=body, headers=headers)
        assert answer.status_code == 400 and message in answer.get_json()["error"], body
    replay = admin.post(f"{item}/replay", json={"all": True}, headers=headers)
    assert replay.status_code == 400 and "unknown field(s): all" in replay.get_json()["error"]
    assert [d.name for d in stored(clickstream_dsn, app_id)] == ["Hook"]
    assert stored(clickstream_dsn, app_id)[0].enabled


def test_a_viewer_sees_destinations_and_cannot_change_them(admin, clickstream_dsn):
    app_id = new_app(clickstream_dsn)
    destination_id = destination_id_of(webhook_form(admin, app_id, types=["track"]))
    viewer = signed_in_viewer(admin)
    base = f"/apps/{app_id}/destinations/{destination_id}"
    app_page = viewer.get(f"/apps/{app_id}").get_data(as_text=True)
    assert "Order hook" in app_page and "/destinations/new" not in app_page
    assert "No destinations yet" not in app_page
    page = viewer.get(base)
    assert page.status_code == 200
    text = words(page)
    assert "<dt>Event types</dt><dd>track</dd>" in text.replace("> <", "><")
    for action in ("/enabled", "/filters", "/replay", "/delete"):
        assert f"{base}{action}" not in text
    token = page_csrf(viewer, base)
    refused = [
        viewer.get(f"/apps/{app_id}/destinations/new?kind=webhook"),
        viewer.post(f"/apps/{app_id}/destinations",
                    data={"kind": "redis", "name": "Mine", "csrf_token": token}),
        viewer.post(f"{base}/enabled", data={"enabled": "no", "csrf_token": token}),
        viewer.post(f"{base}/filters", data={"csrf_token": token}),
        viewer.post(f"{base}/replay", data={"csrf_token": token}),
        viewer.get(f"{base}/delete"),
        viewer.post(f"{base}/delete", data={"csrf_token": token}),
        viewer.post(f"/api/v1/apps/{app_id}/destinations", json={"name": "M", "kind": "redis"},
                    headers={"X-CSRF-Token": token}),
        viewer.patch(f"/api/v1{base}", json={"enabled": False}, headers={"X-CSRF-Token": token}),
        viewer.delete(f"/api/v1{base}", headers={"X-CSRF-Token": token}),
        viewer.post(f"/api/v1{base}/replay", headers={"X-CSRF-Token": token}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert refused[-1].get_json() == {
        "error": "viewer1 is a viewer; only an admin can do this", "status": 403}
    assert viewer.get(f"/api/v1{base}").get_json()["name"] == "Order hook"
    (kept,) = stored(clickstream_dsn, app_id)
    assert (kept.id, kept.enabled, kept.filters) == (destination_id, True, {"types": ["track"]})
    # A viewer's API token is refused the same way.
    viewer_token = api_token(admin, "viewer")
    client = admin.application.test_client()
    assert client.patch(f"/api/v1{base}", json={"enabled": False},
                        headers={"Authorization": f"Bearer {viewer_token}"}).status_code == 403
    assert stored(clickstream_dsn, app_id)[0].enabled


def test_changes_without_the_csrf_token_are_refused(admin, clickstream_dsn):
    app_id = new_app(clickstream_dsn)
    destination_id = destination_id_of(webhook_form(admin, app_id))
    base = f"/apps/{app_id}/destinations/{destination_id}"
    answers = [
        admin.post(f"/apps/{app_id}/destinations",
                   data={"kind": "redis", "name": "Forged"}),
        admin.post(f"{base}/enabled", data={"enabled": "no", "csrf_token": "forged"}),
        admin.post(f"{base}/filters", data={"types": ["page"]}),
        admin.post(f"{base}/replay", data={}),
        admin.post(f"{base}/delete", data={"csrf_token": "forged"}),
        admin.post(f"/api/v1/apps/{app_id}/destinations", json={"name": "F", "kind": "redis"}),
        admin.patch(f"/api/v1{base}", json={"enabled": False}),
        admin.delete(f"/api/v1{base}", headers={"X-CSRF-Token": "forged"}),
        admin.post(f"/api/v1{base}/replay"),
    ]
    assert [a.status_code for a in answers] == [400] * len(answers)
    assert CSRF_REFUSED in answers[0].get_data(as_text=True)
    assert CSRF_REFUSED in answers[-1].get_json()["error"]
    (kept,) = stored(clickstream_dsn, app_id)
    assert (kept.id, kept.enabled, kept.filters) == (destination_id, True, {})


def test_unknown_and_other_apps_destinations_are_404s(admin, clickstream_dsn):
    app_id, other_app = new_app(clickstream_dsn), new_app(clickstream_dsn, "other")
    other = destination_id_of(webhook_form(admin, other_app))
    token = page_csrf(admin)
    base = f"/apps/{app_id}/destinations/{other}"
    answers = {
        "page": admin.get(base),
        "enable": admin.post(f"{base}/enabled", data={"enabled": "no", "csrf_token": token}),
        "delete page": admin.get(f"{base}/delete"),
        "delete": admin.post(f"{base}/delete", data={"csrf_token": token}),
        "replay": admin.post(f"{base}/replay", data={"csrf_token": token}),
        "new on no app": admin.get("/apps/999/destinations/new"),
        "create on no app": admin.post("/apps/999/destinations",
                                       data={"kind": "redis", "name": "x", "csrf_token": token}),
        "api": admin.get(f"/api/v1{base}"),
        "api patch": admin.patch(f"/api/v1{base}", json={"enabled": False},
                                 headers={"X-CSRF-Token": token}),
        "api delete": admin.delete(f"/api/v1{base}", headers={"X-CSRF-Token": token}),
        "api replay": admin.post(f"/api/v1{base}/replay", headers={"X-CSRF-Token": token}),
        "api list": admin.get("/api/v1/apps/999/destinations"),
        "api create": admin.post("/api/v1/apps/999/destinations",
                                 json={"name": "x", "kind": "redis"},
                                 headers={"X-CSRF-Token": token}),
        "huge": admin.get(f"/api/v1/apps/{app_id}/destinations/{'9' * 20}"),
    }
    assert {k: a.status_code for k, a in answers.items()} == dict.fromkeys(answers, 404)
    assert answers["api"].get_json()["error"] == f"App web shop has no destination {other}."
    (kept,) = stored(clickstream_dsn, other_app)
    assert kept.enabled and stored(clickstream_dsn, app_id) == []


def test_the_destinations_api_is_described_and_fuzzing_finds_no_server_error(
        pg_database, commander, clickstream_dsn, redis_url):
    app = create_app(pilot_settings(pg_database, commander.url, clickstream_dsn=clickstream_dsn,
                                    redis_url=redis_url))
    admin = app.test_client()
    assert sign_in(admin).status_code == 303
    app_id = new_app(clickstream_dsn)
    ids = {"app_id": app_id,
           "destination_id": destination_id_of(webhook_form(admin, app_id, name="Hook"))}
    token = api_token(admin, "admin")
    schema = openapi.from_wsgi("/openapi.json", app)
    spec = admin.get("/openapi.json").get_json()
    ours = ("/destinations", "/events")
    routes = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/apps")
              and any(part in rule.rule for part in ours)
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert len(routes) == 7
    assert routes == {(path, method) for path, item in spec["paths"].items()
                      if any(part in path for part in ours) for method in item}
    seen: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        if any(part in operation.path for part in ours):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                fuzz(operation, mode, {"Authorization": f"Bearer {token}"}, seen,
                     ids if mode is GenerationMode.POSITIVE else None)
    assert seen[200] and seen[400] and seen[404], seen
    # 503 only from a replay, without the module's Kafka (documented).
    assert seen[500] == 0, seen


def fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str],
         seen: Counter[int], ids: dict[str, int] | None) -> None:
    """Each generated request (to existing ids, when given) answered as the spec says."""
    documented = {int(code) for code in operation.definition.raw["responses"]} | {404, 405}

    @hypothesis_settings(max_examples=25, deadline=None, database=None,
                         suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        if ids and case.path_parameters:
            case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
        response = case.call(headers=headers)
        seen[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        assert response.status_code < 500 or (
            response.status_code == 503 and operation.path.endswith("/replay")), (
            f"{where}: {response.text[:300]}")
        assert response.status_code in documented, f"{where} (not in the spec)"
        response.json()

    try:
        check()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE


# -- replaying real dead letters ------------------------------------------------------


@pytest.fixture
def pipeline(clickstream_dsn: str, kafka, redis_url: str, kafka_topic_prefix: str,
             tmp_path: Path) -> Iterator[Pipeline]:
    """clickstream's own test pipeline (tests/integration/clickstream/pipeline.py) on
    the clickstream database Pilot is given."""
    running = Pipeline(clickstream_dsn, kafka.bootstrap, redis_url,
                       kafka_topic_prefix.rstrip("."), tmp_path)
    yield running
    running.stop_all()


def test_the_replay_button_sends_real_dead_letters_again_once(
        pg_database, commander, kafka, pipeline: Pipeline, webhook_sink: HttpSink):
    app = create_app(pilot_settings(pg_database, commander.url, clickstream_dsn=pipeline.dsn,
                                    kafka_bootstrap=kafka.bootstrap,
                                    clickstream_prefix=pipeline.prefix,
                                    clickstream_partitions=4))
    admin = app.test_client()
    assert sign_in(admin).status_code == 303
    app_id, key = pipeline.create_app()
    made = admin.post(f"/api/v1/apps/{app_id}/destinations", json={
        "name": "Hook", "kind": "webhook", "settings": {"url": webhook_sink.url, **PATIENT}},
        headers={"X-CSRF-Token": page_csrf(admin)})
    assert made.status_code == 201, made.get_json()
    destination_id = made.get_json()["id"]
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("webhook")

    webhook_sink.status = 400  # a client error: retrying cannot help, so dead letters
    batch = [{"type": "track", "userId": f"user-{u}", "event": "Step",
              "properties": {"seq": seq}} for seq in range(4) for u in range(3)]
    assert pipeline.post("/v1/batch", {"batch": batch}, key).status_code == 200
    dead = pipeline.read_topic(f"{pipeline.prefix}.dead.{destination_id}", expect=12)
    assert len(dead) == 12
    assert webhook_sink.events() == []
    base = f"/apps/{app_id}/destinations/{destination_id}"
    counted = wait_for_state(pipeline, destination_id, lambda s: s["dead_lettered"] == 12)
    assert counted["last_error"].startswith("HTTP 400")
    page = words(admin.get(base))
    assert "<p class=\"big\">12</p> <p>waiting for replay (12 given up on, 0 replayed)</p>" in (
        page)
    assert f'action="{base}/replay"' in page

    webhook_sink.status = 200
    started = time.monotonic()
    replayed = admin.post(f"{base}/replay", data={"csrf_token": page_csrf(admin, base)})
    assert (replayed.status_code, replayed.headers["Location"]) == (
        303, f"{base}?notice=replayed&replayed=12"), replayed.get_data(as_text=True)[-800:]
    assert time.monotonic() - started < 20
    assert "12 dead letters sent to the destination again" in words(
        admin.get(replayed.headers["Location"]))
    webhook_sink.wait_until(lambda: len(webhook_sink.events()) == 12)
    assert sorted((e["userId"], e["properties"]["seq"]) for e in webhook_sink.events()) == (
        sorted((f"user-{u}", seq) for seq in range(4) for u in range(3)))

    # The same replay group as the CLI's: asking again (here by the API) sends nothing.
    again = admin.post(f"/api/v1{base}/replay", headers={"X-CSRF-Token": page_csrf(admin)})
    assert again.status_code == 200
    assert again.get_json()["replayed"] == 0
    state = wait_for_state(pipeline, destination_id, lambda s: s["delivered"] == 12)
    assert (state["dead_lettered"], state["replayed"], state["delivered"]) == (12, 12, 12)
    assert len(webhook_sink.events()) == 12
    shown = admin.get(f"/api/v1{base}").get_json()["delivery"]
    assert (shown["waiting_for_replay"], shown["replayed"]) == (0, 12)
    assert "There were no dead letters to replay." in words(
        admin.get(f"{base}?notice=replayed&replayed=0"))


def wait_for_state(pipeline: Pipeline, destination_id: int, done: Any,
                   timeout: float = 30) -> dict[str, Any]:
    """The destination's delivery state once `done(state)` holds (workers add their
    counts every few seconds)."""
    deadline = time.monotonic() + timeout
    with pipeline.connect() as conn:
        while True:
            state = storage.get_delivery_state(conn, destination_id)
            if done(state) or time.monotonic() > deadline:
                return state
            time.sleep(0.2)


def test_a_replay_while_kafka_is_away_is_a_503_in_seconds(pg_database, commander,
                                                          clickstream_dsn):
    app = create_app(pilot_settings(pg_database, commander.url, clickstream_dsn=clickstream_dsn,
                                    kafka_bootstrap="127.0.0.1:1"))
    admin = app.test_client()
    assert sign_in(admin).status_code == 303
    app_id = new_app(clickstream_dsn)
    destination_id = destination_id_of(webhook_form(admin, app_id))
    base = f"/apps/{app_id}/destinations/{destination_id}"
    started = time.monotonic()
    page = admin.post(f"{base}/replay", data={"csrf_token": page_csrf(admin, base)})
    assert (page.status_code, page.headers["Retry-After"]) == (503, "5")
    assert "Kafka (127.0.0.1:1) does not answer" in page.get_data(as_text=True)
    assert time.monotonic() - started < 10
    api = admin.post(f"/api/v1{base}/replay", headers={"X-CSRF-Token": page_csrf(admin)})
    assert api.status_code == 503 and "does not answer" in api.get_json()["error"]
