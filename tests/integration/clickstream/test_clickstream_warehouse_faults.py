"""Warehouse loads when events are odd or the warehouse refuses some: a NUL in a
property, names longer than Postgres's identifiers, and a value a column an analyst
made narrower cannot hold — which goes to dead letters alone, the rest of its batch
loaded."""

from __future__ import annotations

import psycopg

from clickstream.workers.warehouse_schema import MAX_IDENTIFIER, identifier
from tests.integration.clickstream.pipeline import Pipeline
from tests.integration.clickstream.test_clickstream_end_to_end import _wait_for_rows

LONG = "a property name far longer than the sixty-three bytes postgres keeps of a name"


def test_one_refused_event_is_dead_lettered_alone_and_odd_ones_load(pipeline: Pipeline):
    app_id, key = pipeline.create_app()
    destination = pipeline.create_destination(app_id, "Warehouse", "warehouse", {
        "dsn": pipeline.dsn, "schema": "analytics", "batch_size": 50, "flush_seconds": 2})
    with psycopg.connect(pipeline.dsn) as conn:  # as an analyst made it: a small column
        conn.execute("CREATE SCHEMA analytics")
        conn.execute("CREATE TABLE analytics.order_completed (id VARCHAR(512) PRIMARY KEY,"
                     " quantity SMALLINT)")
    pipeline.event_api()
    pipeline.router()
    pipeline.worker("warehouse")

    def order(n: int, quantity: int, **properties: object) -> dict:
        return {"type": "track", "userId": "u-1", "event": "Order Completed",
                "messageId": f"m-{n}", "properties": {"quantity": quantity, **properties}}

    batch = [order(1, 1, note="a\u0000b"), order(2, 2, **{LONG + " one": "x"}),
             order(3, 100_000), order(4, 4, **{LONG + " two": "y"}), order(5, 5)]
    assert pipeline.post("/v1/batch", {"batch": batch}, key).status_code == 200

    rows = _wait_for_rows(pipeline.dsn, "SELECT id, quantity, note FROM"
                          " analytics.order_completed ORDER BY id", 4)
    assert rows == [("m-1", 1, "ab"), ("m-2", 2, None), ("m-4", 4, None), ("m-5", 5, None)]
    dead = pipeline.read_topic(f"{pipeline.prefix}.dead.{destination.id}", expect=1)
    assert [m.key() for m in dead] == [b"u-1"] and len(dead) == 1
    assert b'"m-3"' in dead[0].value()
    assert b"out of range" in dict(dead[0].headers())["error"]

    one, two = identifier(LONG + " one"), identifier(LONG + " two")
    assert len(one) == len(two) == MAX_IDENTIFIER and one != two
    with psycopg.connect(pipeline.dsn) as conn:
        columns = {name for (name,) in conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'analytics' AND table_name = 'order_completed'")}
        tracks = conn.execute("SELECT id FROM analytics.tracks ORDER BY id").fetchall()
    assert {one, two} <= columns
    assert tracks == [("m-1",), ("m-2",), ("m-4",), ("m-5",)]  # m-3's row went with it
