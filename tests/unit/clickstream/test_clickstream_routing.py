import socket

import pytest

from clickstream.router import router_id_from_env
from clickstream.routing import integration_enabled, passes_filters, select_destinations
from clickstream.storage import Destination


def destination(name: str, filters: dict | None = None, id_: int = 1) -> Destination:
    return Destination(id_, 1, name, "webhook", {}, None, True, filters or {})


@pytest.mark.parametrize(("integrations", "expected"), [
    (None, True),
    ({}, True),
    ({"All": False}, False),
    ({"All": False, "Hook": True}, True),
    ({"All": True, "Hook": False}, False),
    ({"Hook": {"apiKey": "x"}}, True),  # options object means on
    ({"Other": False}, True),
    ("garbage", True),
])
def test_integrations(integrations, expected: bool) -> None:
    assert integration_enabled(integrations, "Hook") is expected


def test_filters_by_type_and_track_name() -> None:
    only_orders = {"types": ["track", "identify"], "events": ["Order Completed"]}
    assert passes_filters({"type": "track", "event": "Order Completed"}, only_orders)
    assert not passes_filters({"type": "track", "event": "Clicked"}, only_orders)
    assert passes_filters({"type": "identify"}, only_orders)  # names limit tracks only
    assert not passes_filters({"type": "page"}, only_orders)
    assert passes_filters({"type": "page"}, {})


def test_select_combines_both() -> None:
    hook = destination("Hook", id_=1)
    warehouse = destination("Warehouse", {"types": ["track"]}, id_=2)
    event = {"type": "identify", "integrations": {"All": True}}
    assert select_destinations(event, [hook, warehouse]) == [hook]
    event = {"type": "track", "event": "x", "integrations": {"Hook": False}}
    assert select_destinations(event, [hook, warehouse]) == [warehouse]


@pytest.mark.parametrize(("environ", "expected"), [
    ({"CLICKSTREAM_ROUTER_ID": "eu-1", "REPLICA_INDEX": "2"}, "eu-1"),
    ({"REPLICA_INDEX": "2"}, "router-2"),
    ({"REPLICA_INDEX": "0"}, "router-0"),
    ({}, socket.gethostname()),
])
def test_router_id_is_stable_per_replica(environ, expected):
    assert router_id_from_env(environ) == expected
