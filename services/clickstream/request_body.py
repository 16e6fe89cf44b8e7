"""An Event API request's body as the handlers get it: undone of its Content-Encoding
(every gzip member; deflate, zlib-wrapped or raw) within the size limit, then read as
strict RFC 8259 JSON that any consumer can parse back — or refused with why.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from typing import Any

import orjson

from clickstream.refused import Refused

CONTENT_ENCODINGS = ("gzip", "x-gzip", "deflate", "identity")


def decode_body(raw: bytes, content_encoding: str, max_bytes: int) -> bytes:
    """``raw`` undone of each coding in ``content_encoding`` (last applied, first undone);
    :class:`Refused` 400 when it is not what the header says, 413 when it inflates beyond
    ``max_bytes``, 415 for a coding we do not know."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    body = raw
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, max_bytes, "gzip")
        elif coding == "deflate":
            body = _inflate(body, max_bytes, "deflate")
        elif coding != "identity":
            raise Refused(415, "unsupported_encoding",
                          f"Content-Encoding {coding[:40]!r} is not supported; send "
                          f"{', '.join(CONTENT_ENCODINGS)} or none")
    return body


def _inflate(data: bytes, max_bytes: int, coding: str) -> bytes:
    """Every member of a gzip body (RFC 1952 allows several, e.g. appended files), or a
    deflate body, never more than ``max_bytes + 1`` bytes of output at any time."""
    out = bytearray()
    while True:
        if coding == "gzip":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
            inflater = zlib.decompressobj(zlib.MAX_WBITS)  # RFC 9110's deflate: zlib
        else:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # what some clients send: raw
        try:
            out += inflater.decompress(data, max_bytes + 1 - len(out))
        except zlib.error:
            raise Refused(400, f"invalid_{coding}", f"body is not valid {coding}") from None
        if len(out) > max_bytes:
            raise Refused(413, "too_large", f"decompressed body over {max_bytes} bytes")
        if not inflater.eof:
            raise Refused(400, f"invalid_{coding}", f"{coding} body is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)
        if coding != "gzip":
            raise Refused(400, "invalid_deflate", "data after the end of the deflate stream")


# Nesting deeper than this is refused. Far beyond what tracking data needs; within what
# strict consumers parse by default (.NET's System.Text.Json stops at 64), and far from
# Python's recursion limit in any consumer here.
MAX_JSON_DEPTH = 64
# A float's range; integers beyond int64 are read as doubles, as JavaScript reads them.
_INT64 = 2**63
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
# What orjson reads otherwise than the rules above (it refuses lone surrogates, and
# reads integers up to 2**64 as integers): such bodies take the standard library's path.
_NOT_FOR_ORJSON = re.compile(rb"\\u[dD][89a-fA-F]|[0-9]{19}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _number(text: str) -> int | float:
    # len check first: int() refuses more than 4,300 digits with a ValueError of its own.
    if len(text) <= 20:
        value = int(text)
        if -_INT64 <= value < _INT64:
            return value
    return _float(text)


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJson(f"number {text[:40]} is beyond the range of a double")
    return value


def _constant(name: str) -> None:
    raise _NotJson(f"{name} is not JSON")


class _NotJson(ValueError):
    pass


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """A request body as JSON, refused (:class:`Refused` 400) unless it is RFC 8259 JSON
    in UTF-8 that any consumer can read back: no NaN or Infinity, numbers within a
    double's range, at most ``max_depth`` levels deep. Lone UTF-16 surrogate escapes
    (``"\\ud800"``, what JavaScript makes of an emoji cut in half) become U+FFFD, as
    Segment's own API does; of duplicate keys the last one counts.

    orjson reads the bodies it reads as these rules do, five times faster; anything it
    refuses is read again by the standard library, for the refusal's message."""
    if not _NOT_FOR_ORJSON.search(body):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            _check_depth(value, body.count(b"[") + body.count(b"{"), max_depth)
            return value
    return parse_json_slowly(body, max_depth)


def parse_json_slowly(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """:func:`parse_json` with the standard library alone: the rules' reference."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(400, "invalid_json", f"body is not UTF-8: {exc.reason} at byte "
                      f"{exc.start}") from None
    try:
        value = json.loads(text, parse_int=_number, parse_float=_float,
                           parse_constant=_constant)
    except RecursionError:
        raise Refused(400, "invalid_json",
                      f"body is nested more than {max_depth} levels deep") from None
    except ValueError as exc:
        raise Refused(400, "invalid_json", f"body is not valid JSON: {str(exc)[:200]}") from None
    _check_depth(value, text.count("[") + text.count("{"), max_depth)
    if _MAYBE_SURROGATE.search(text):
        # Rare (emoji that ASCII-only clients escape as pairs match too): only then
        # write it out to see whether a lone surrogate came through, and mend it.
        written = json.dumps(value, ensure_ascii=False)
        if _SURROGATE.search(written):
            value = json.loads(_SURROGATE.sub("\ufffd", written))
    return value


def _check_depth(value: Any, brackets: int, max_depth: int) -> None:
    # Fewer brackets than the limit cannot nest beyond it: most single events.
    if brackets > max_depth and _deeper_than(value, max_depth):
        raise Refused(400, "invalid_json", f"body is nested more than {max_depth} levels deep")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether the parsed ``value`` nests more than ``limit`` levels: its containers
    walked a level at a time, stopping at the first level with none (three times faster
    than counting the text's brackets outside strings)."""
    level = [value]
    for _ in range(limit):
        level = [child for container in level
                 for child in (container.values() if isinstance(container, dict) else container)
                 if isinstance(child, dict | list)]
        if not level:
            return False
    return True
