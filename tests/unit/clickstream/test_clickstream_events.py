import uuid
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clickstream.events import (
    InvalidEvent,
    corrected_timestamp,
    format_time,
    partition_key,
    prepare_event,
    uuid5_text,
    validate,
)

RECEIVED = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_skew_is_corrected_from_sent_at() -> None:
    # The client's clock is an hour ahead: it sent at 13:00:10 what happened at 13:00:00.
    corrected = corrected_timestamp(RECEIVED, "2024-05-01T13:00:00Z", "2024-05-01T13:00:10Z")
    assert corrected == RECEIVED - timedelta(seconds=10)


def test_without_sent_at_or_for_imports_timestamp_is_kept() -> None:
    assert corrected_timestamp(RECEIVED, "2020-01-01T00:00:00Z", None) == datetime(
        2020, 1, 1, tzinfo=timezone.utc)
    assert corrected_timestamp(RECEIVED, "2020-01-01T00:00:00Z", "2020-01-01T00:00:05Z",
                               correct_skew=False).year == 2020


def test_without_timestamp_the_event_happened_when_received() -> None:
    assert corrected_timestamp(RECEIVED, None, "2024-05-01T13:00:10Z") == RECEIVED


def test_prepare_adds_server_fields_and_drops_write_key() -> None:
    event = prepare_event({"userId": 42, "event": "Clicked", "writeKey": "secret",
                           "timestamp": "2024-05-01T11:59:00+02:00"},
                          "track", RECEIVED, "192.0.2.1")
    assert event["userId"] == "42"
    assert "writeKey" not in event
    assert len(event["messageId"]) == 36
    assert event["receivedAt"] == "2024-05-01T12:00:00.000Z"
    assert event["timestamp"] == "2024-05-01T09:59:00.000Z"
    assert event["originalTimestamp"] == "2024-05-01T11:59:00+02:00"
    assert event["context"] == {"ip": "192.0.2.1"}
    assert partition_key(event) == b"42"


def test_client_ip_in_context_is_kept() -> None:
    event = prepare_event({"anonymousId": "a", "context": {"ip": "198.51.100.7"}}, "page",
                          RECEIVED, "192.0.2.1")
    assert event["context"]["ip"] == "198.51.100.7"
    assert partition_key(event) == b"a"


@pytest.mark.parametrize(("event", "event_type", "message"), [
    ({"event": "x"}, "track", "userId or anonymousId is required"),
    ({"userId": "u"}, "track", "track needs an event name"),
    ({"userId": "u", "event": ""}, "track", "track needs an event name"),
    ({"userId": ["u"], "event": "x"}, "track", "userId must be a string"),
    ({"userId": True, "event": "x"}, "track", "userId must be a string"),
    ({"userId": "u", "properties": []}, "page", "properties must be an object"),
    ({"userId": "u", "traits": "x"}, "identify", "traits must be an object"),
    ({"userId": "u"}, "group", "group needs a groupId"),
    ({"anonymousId": "a", "previousId": "p"}, "alias", "alias needs userId"),
    ({"userId": "u"}, "alias", "alias needs previousId"),
    ({"userId": "u", "type": "page"}, "track", "does not match the endpoint"),
    ({"userId": "u", "type": "nope"}, None, "type must be one of"),
    ({"userId": "u", "name": 3}, "screen", "name must be a string"),
    ({"userId": "u", "messageId": 7}, "identify", "messageId must be a string"),
    ("text", "track", "must be a JSON object"),
])
def test_invalid_events_say_what_is_wrong(event, event_type, message) -> None:
    with pytest.raises(InvalidEvent, match=message):
        validate(event, event_type)


@pytest.mark.parametrize("bad", ["yesterday", 1714564800, "2024-13-01T00:00:00Z"])
def test_bad_times_are_refused(bad) -> None:
    with pytest.raises(InvalidEvent, match="timestamp"):
        prepare_event({"userId": "u", "timestamp": bad}, "identify", RECEIVED, None)


def test_absurd_skew_is_refused_not_a_crash() -> None:
    with pytest.raises(InvalidEvent, match="out of range"):
        prepare_event({"userId": "u", "timestamp": "2000-01-01T00:00:00Z",
                       "sentAt": "9999-01-01T00:00:00Z"}, "identify", RECEIVED, None)


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(timezone.utc)),
       st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=30)))
def test_skew_correction_preserves_the_delay(happened: datetime, skew: timedelta) -> None:
    """However wrong the client clock, the event's age at sending is kept."""
    delay = timedelta(seconds=7)
    client_timestamp = format_time(happened + skew)
    client_sent_at = format_time(happened + skew + delay)
    corrected = corrected_timestamp(RECEIVED, client_timestamp, client_sent_at)
    assert abs((RECEIVED - corrected) - delay) < timedelta(milliseconds=2)


def test_batch_sent_at_is_kept_on_each_event_after_correcting_skew() -> None:
    # The batch was sent 10 s after the event, by a clock an hour ahead.
    event = prepare_event({"userId": "u", "event": "e", "timestamp": "2024-05-01T13:00:00Z"},
                          "track", RECEIVED, None,
                          batch_sent_at="2024-05-01T13:00:10Z")
    assert event["sentAt"] == "2024-05-01T13:00:10Z"
    assert event["timestamp"] == "2024-05-01T11:59:50.000Z"
    assert event["originalTimestamp"] == "2024-05-01T13:00:00Z"


def test_an_events_own_sent_at_wins_over_the_batchs() -> None:
    event = prepare_event({"userId": "u", "event": "e", "timestamp": "2024-05-01T13:00:00Z",
                           "sentAt": "2024-05-01T13:00:05Z"}, "track", RECEIVED, None,
                          batch_sent_at="2024-05-01T13:00:10Z")
    assert event["sentAt"] == "2024-05-01T13:00:05Z"
    assert event["timestamp"] == "2024-05-01T11:59:55.000Z"


def test_a_bad_batch_sent_at_is_refused_rather_than_stored() -> None:
    with pytest.raises(InvalidEvent, match="sentAt"):
        prepare_event({"userId": "u", "event": "e"}, "track", RECEIVED, None,
                      batch_sent_at="soon")


@pytest.mark.parametrize("top_level", [{}, None, "absent"])
def test_identify_takes_traits_from_context_when_it_has_none(top_level) -> None:
    event = {"userId": "u", "context": {"traits": {"email": "a@example.com"}}}
    if top_level != "absent":
        event["traits"] = top_level
    prepared = prepare_event(event, "identify", RECEIVED, None)
    assert prepared["traits"] == {"email": "a@example.com"}
    assert prepared["context"]["traits"] == {"email": "a@example.com"}


def test_top_level_traits_and_other_types_are_left_alone() -> None:
    identify = prepare_event({"userId": "u", "traits": {"plan": "pro"},
                              "context": {"traits": {"plan": "free"}}},
                             "identify", RECEIVED, None)
    assert identify["traits"] == {"plan": "pro"}
    track = prepare_event({"userId": "u", "event": "e", "context": {"traits": {"a": 1}}},
                          "track", RECEIVED, None)
    assert "traits" not in track


@given(st.text())
def test_derived_ids_are_the_uuid5_of_the_standard_library(name: str) -> None:
    # Ids derived before must stay the ids derived now: a retry after an upgrade has to
    # get the same ones.
    namespace = uuid.UUID("5f3f6d0e-8c2a-4b7e-9a51-2f0c3d9e7b14")
    assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))
