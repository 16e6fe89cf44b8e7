import pytest

from clickstream.cors import (
    InvalidOrigin,
    allowed_request_headers,
    normalize_origin,
    origin_allowed,
    parse_origins,
    preflight_headers,
    response_headers,
)


def test_preflight_allows_what_tracking_libraries_send() -> None:
    headers = preflight_headers("https://shop.example", {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization,x-retry-count,x-trace"})
    assert headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed >= {"authorization", "content-type", "content-encoding", "x-retry-count",
                       "x-trace"}
    assert int(headers["Access-Control-Max-Age"]) >= 600
    assert "Access-Control-Allow-Private-Network" not in headers


def test_preflight_from_a_public_page_to_a_private_address_is_allowed() -> None:
    headers = preflight_headers("https://shop.example", {
        "access-control-request-private-network": "true"})
    assert headers["Access-Control-Allow-Private-Network"] == "true"


@pytest.mark.parametrize("requested", [
    "x-forwarded-for", "X-Forwarded-Host", "forwarded", "x-real-ip", "true-client-ip",
    "bad header", "x" * 65, "x-a\r\nset-cookie", "(x)"])
def test_address_forging_and_malformed_names_are_not_echoed(requested: str) -> None:
    allowed = allowed_request_headers(f"content-type, {requested}").lower()
    assert requested.lower() not in allowed
    assert allowed.startswith("authorization, content-type")


def test_echoed_names_are_bounded() -> None:
    allowed = allowed_request_headers(",".join(f"x-h{i}" for i in range(1000)))
    assert len(allowed.split(",")) < 50


def test_every_response_names_the_origin_or_any() -> None:
    assert response_headers("http://localhost:3000")["Access-Control-Allow-Origin"] == (
        "http://localhost:3000")
    assert response_headers(None)["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in response_headers(None)["Access-Control-Expose-Headers"]


@pytest.mark.parametrize(("given", "stored"), [
    ("https://Shop.Example.COM", "https://shop.example.com"),
    ("https://shop.example.com:443/", "https://shop.example.com"),
    ("http://shop.example.com:80", "http://shop.example.com"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("https://*.example.com", "https://*.example.com"),
    ("https://[::1]:8443", "https://[::1]:8443"),
    ("https://bücher.example", "https://xn--bcher-kva.example"),
    ("null", "null"),
])
def test_origins_are_stored_as_browsers_send_them(given: str, stored: str) -> None:
    assert normalize_origin(given) == stored


@pytest.mark.parametrize(("given", "says"), [
    ("shop.example.com", "http:// or https://"),
    ("ftp://shop.example.com", "http:// or https://"),
    ("https://shop.example.com/app", "no path"),
    ("https://user@shop.example.com", "no path, query or user"),
    ("https://shop.example.com:99999", "port"),
    ("https://*", "not a host name"),
    ("https://a*.example.com", "wildcard covers whole labels"),
    ("https://*.com", "a wildcard needs a domain"),
])
def test_an_origin_no_browser_could_send_is_refused(given: str, says: str) -> None:
    with pytest.raises(InvalidOrigin, match=says):
        normalize_origin(given)


def test_parse_origins_keeps_order_and_drops_duplicates() -> None:
    assert parse_origins(["https://b.example", "https://B.example:443", "https://a.example"]) \
        == ("https://b.example", "https://a.example")


@pytest.mark.parametrize(("origin", "allowed", "expected"), [
    ("https://evil.example", None, True),                       # no list: any origin
    (None, ("https://shop.example",), True),                    # not from a browser page
    ("https://shop.example", ("https://shop.example",), True),
    ("https://SHOP.example", ("https://shop.example",), True),
    ("http://shop.example", ("https://shop.example",), False),  # scheme counts
    ("https://shop.example:8443", ("https://shop.example",), False),
    ("https://evil.example", ("https://shop.example",), False),
    ("https://shop.example.evil", ("https://shop.example",), False),
    ("https://eu.shop.example", ("https://*.shop.example",), True),
    ("https://a.eu.shop.example", ("https://*.shop.example",), True),
    ("https://shop.example", ("https://*.shop.example",), False),
    ("https://evilshop.example", ("https://*.shop.example",), False),
    ("https://eu.shop.example:8443", ("https://*.shop.example",), False),
    ("https://eu.shop.example:8443", ("https://*.shop.example:8443",), True),
    ("null", ("https://shop.example",), False),
    ("null", ("null",), True),
    ("https://shop.example", (), False),                        # server-side only
])
def test_origin_allowed(origin: str | None, allowed: tuple[str, ...] | None,
                        expected: bool) -> None:
    assert origin_allowed(origin, allowed) is expected
