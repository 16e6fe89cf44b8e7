from datetime import datetime

from clickstream.workers.warehouse_schema import (
    MAX_IDENTIFIER,
    coerce,
    event_table,
    flatten,
    identifier,
    rows_for,
    sql_type,
)

NOW = datetime(2024, 1, 1)


def test_identifiers() -> None:
    assert identifier("Order Completed") == "order_completed"
    assert identifier("productId") == "product_id"
    assert identifier("2fa enabled") == "_2fa_enabled"
    assert len(identifier("x" * 300)) == 63 and identifier("x" * 300).startswith("x" * 54)
    assert event_table("Tracks") == "tracks_events"


def test_flatten_nested_objects() -> None:
    assert flatten({"a": {"b": {"c": 1}}, "d": None, "e": [1]}) == {"a_b_c": 1, "e": [1]}


def test_track_rows_go_to_tracks_and_the_event_table() -> None:
    rows = rows_for({"type": "track", "event": "Order Completed", "messageId": "m",
                     "userId": "u", "properties": {"total": 3},
                     "context": {"library": {"name": "js"}}}, NOW)
    assert set(rows) == {"tracks", "order_completed"}
    assert "total" not in rows["tracks"]
    assert rows["order_completed"]["total"] == 3
    assert rows["tracks"]["context_library_name"] == "js"
    assert rows["tracks"]["event_text"] == "Order Completed"


def test_types_and_coercion() -> None:
    assert sql_type("received_at", "2024-01-01T00:00:00Z") == "TIMESTAMP"
    assert sql_type("n", 3) == "DOUBLE PRECISION"
    assert sql_type("ok", True) == "BOOLEAN"
    assert coerce(3, "double precision") == 3.0
    assert coerce("x", "double precision") is None
    assert coerce(True, "character varying") == "true"
    assert coerce([1, 2], "character varying") == "[1, 2]"
    assert coerce("2024-01-01T10:00:00+02:00", "timestamp without time zone") == datetime(
        2024, 1, 1, 8, 0)


def test_long_names_keep_within_postgres_limit_without_colliding():
    base = "x" * 80
    first, second = identifier(base + "a"), identifier(base + "b")
    assert len(first) == len(second) == MAX_IDENTIFIER == 63
    assert first != second and first.startswith("x" * 50)
    assert identifier(base + "a") == first  # the same name, every time
    assert identifier("short") == "short"


def test_nul_is_dropped_from_text():
    assert coerce("a\x00b\x00", "character varying") == "ab"
