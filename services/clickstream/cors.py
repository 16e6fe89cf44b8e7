"""Cross-origin rules of the Event API, so tracking code in a browser can post to it.

Every response carries ``Access-Control-Allow-Origin`` (the request's ``Origin``, or
``*`` without one): a browser treats a response it may not read as a network error and
sends the same events again. Preflights are answered for any path before the app is
known (a preflight carries no write key); the per-app list of allowed origins is
checked on the request itself, which is then refused with a 403 the page can read.

An allowed origin is ``scheme://host[:port]`` as browsers send it, or
``scheme://*.domain[:port]`` for every subdomain of ``domain``. The list is not
authentication: a client outside a browser sends any ``Origin`` it likes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

ALLOW_METHODS = "GET, POST, OPTIONS"
# The request headers the common tracking libraries send, allowed in every preflight.
ALWAYS_ALLOWED_HEADERS = ("Authorization", "Content-Type", "Content-Encoding", "X-Retry-Count")
# Browsers cap it lower (Chromium: 2 h); Firefox keeps a preflight for up to a day.
MAX_AGE_SECONDS = 86400
# Response headers scripts may read beyond the safelisted ones: when to retry a 429/503.
EXPOSE_HEADERS = "Retry-After"

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_MAX_ECHOED_HEADERS = 32
# Headers that would let a page set the address the Event API records as the client's.
_NEVER_ECHOED = ("forwarded", "x-forwarded-", "x-real-ip", "x-client-ip", "true-client-ip",
                 "x-cluster-client-ip", "cf-connecting-ip")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SUBDOMAINS = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


class InvalidOrigin(ValueError):
    """An allowed-origin entry that no browser could send; the message says why."""


def allowed_request_headers(requested: str | None) -> str:
    """The ``Access-Control-Allow-Headers`` value for a preflight.

    The usual headers, plus those the page asked for (``Access-Control-Request-Headers``)
    that are well-formed names and not address-forging ones.
    """
    names = list(ALWAYS_ALLOWED_HEADERS)
    seen = {name.lower() for name in names}
    for raw in (requested or "").split(",")[:_MAX_ECHOED_HEADERS]:
        name = raw.strip().lower()
        if not name or name in seen or not _TOKEN.match(name):
            continue
        if any(name == bad or (bad.endswith("-") and name.startswith(bad))
               for bad in _NEVER_ECHOED):
            continue
        seen.add(name)
        names.append(name)
    return ", ".join(names)


def response_headers(origin: str | None) -> dict[str, str]:
    """Headers for every response, preflight or not."""
    return {
        "Access-Control-Allow-Origin": origin or "*",
        "Access-Control-Expose-Headers": EXPOSE_HEADERS,
    }


def preflight_headers(origin: str | None, request_headers: Mapping[str, str]) -> dict[str, str]:
    """Headers of the answer to an ``OPTIONS`` request (with :func:`response_headers`);
    ``request_headers`` has its names in lower case."""
    headers = {
        **response_headers(origin),
        "Access-Control-Allow-Methods": ALLOW_METHODS,
        "Access-Control-Allow-Headers": allowed_request_headers(
            request_headers.get("access-control-request-headers")),
        "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        "Allow": ALLOW_METHODS,
    }
    if request_headers.get("access-control-request-private-network", "").lower() == "true":
        # Chromium asks before a public page may reach an address on a private network.
        headers["Access-Control-Allow-Private-Network"] = "true"
    return headers


def normalize_origin(value: str) -> str:
    """An allowed-origin entry in the form browsers serialize ``Origin``; raises
    :class:`InvalidOrigin`."""
    text = value.strip()
    if text == "null":  # sandboxed frames and file:// pages send this literally
        return text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidOrigin(f"{value!r}: an origin is http:// or https:// and a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise InvalidOrigin(f"{value!r}: an origin has no path, query or user "
                            f"(like https://shop.example.com)")
    try:
        port = parts.port
    except ValueError:
        raise InvalidOrigin(f"{value!r}: the port is not a port number") from None
    host = parts.hostname or ""
    wildcard = host.startswith("*.")
    bare = host[2:] if wildcard else host
    if not bare.isascii():
        try:  # browsers send an internationalized name in its ASCII (punycode) form
            bare = bare.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidOrigin(f"{value!r}: {host!r} is not a host name") from None
        host = f"*.{bare}" if wildcard else bare
    if ":" in bare and not wildcard:
        host = f"[{bare}]"  # an IPv6 address, as browsers write it
    elif not _HOST.match(bare):
        raise InvalidOrigin(f"{value!r}: {host!r} is not a host name"
                            + (" (a wildcard covers whole labels: *.example.com)"
                               if "*" in bare else ""))
    elif wildcard and "." not in bare:
        raise InvalidOrigin(f"{value!r}: a wildcard needs a domain under it (*.example.com)")
    if port == 0:
        raise InvalidOrigin(f"{value!r}: port 0 is not a port a page is served from")
    if port == _DEFAULT_PORTS[scheme]:
        port = None  # browsers leave the default port out of Origin
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def parse_origins(values: Iterable[str]) -> tuple[str, ...]:
    """Normalized, de-duplicated entries in their order; raises :class:`InvalidOrigin`."""
    found: dict[str, None] = {}
    for value in values:
        found[normalize_origin(value)] = None
    return tuple(found)


def origin_allowed(origin: str | None, allowed: Iterable[str] | None) -> bool:
    """Whether a request with this ``Origin`` may post events for an app.

    No list (``None``) allows any origin; a request without ``Origin`` does not come
    from a page in a browser and is always allowed.
    """
    if allowed is None or origin is None:
        return True
    origin = origin.strip().lower()
    for entry in allowed:
        if entry == origin:
            return True
        scheme, sep, rest = entry.partition("://*.")
        if sep and origin.startswith(scheme + "://"):
            suffix = "." + rest  # ".example.com" or ".example.com:8443"
            host_port = origin[len(scheme) + 3:]
            if host_port.endswith(suffix) and _SUBDOMAINS.match(host_port[:-len(suffix)]):
                return True
    return False
