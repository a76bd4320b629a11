"""A fast "is this one JSON object?" for the sealing hot path, with simdjson.

Every event is validated (one UTF-8 JSON object, RFC 8259) before it is sealed. orjson
answers by building the whole Python object, about 5 us for a 2 KB Activity Log record;
simdjson (pysimdjson) validates UTF-8 and the grammar without building anything, about
1 us. A ``yes`` from simdjson is final; anything else goes to the caller's orjson path,
which decides and words the reason. So we accept what orjson accepts (orjson also takes
integers beyond 64 bits, which simdjson refuses: those take the slow path).

The same "yes is final" idea splits JSON arrays of objects (what the client SDK sends):
:func:`array_objects` cuts at each ``}`` followed by ``,{`` or ``]`` and keeps the cut
when simdjson accepts the element before it. An object's closing brace is unique, so a
prefix that parses as one object ends exactly where the element ends, whatever the
strings inside hold; one parse per element both delimits and validates it, where the
bracket scanner of :mod:`auditseal.ingest.jsonscan` runs Python code for every bracket.
Anything unusual (a non-object element, a refused element) returns None, and the
scanner then splits the array and words the errors exactly as before.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import simdjson

from auditseal.ingest.jsonscan import skip_ws

OBJECT = 0
"""One JSON object that is not an Azure Monitor envelope."""
ENVELOPE = 1
"""A ``{"records": [...]}`` envelope: one object whose only member is an array."""
UNDECIDED = 2
"""Not a plain object, or simdjson refused it: ask orjson."""

_BOM = b"\xef\xbb\xbf"
_local = threading.local()  # a simdjson Parser is not safe to share between threads
# Where an object element may end: '}' then ',' and the next object's '{', or the ']'.
_OBJECT_END = re.compile(rb"\}[ \t\r\n]*+(?:,[ \t\r\n]*+(?=\{)|\])")
# Cuts refused in a row (a '},{' inside a string or a nested array) before giving the
# array to the scanner: bounds the work on inputs this fast path does not fit.
_MAX_REFUSED_CUTS = 8
_SEPARATOR_HEAD = 16  # bytes of the next element that the separator needle includes


def parser() -> simdjson.Parser:
    parser: simdjson.Parser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def classify(data: bytes) -> int:
    """Return OBJECT, ENVELOPE or UNDECIDED for ``data``."""
    if data.startswith(_BOM):
        return UNDECIDED  # simdjson skips a byte-order mark; in an event it is an error
    try:
        value = parser().parse(data)
    except (ValueError, RuntimeError):
        return UNDECIDED
    if not isinstance(value, simdjson.Object):
        return UNDECIDED
    if len(value) == 1 and isinstance(value.get("records"), simdjson.Array):
        return ENVELOPE
    return OBJECT


def array_objects(
    buf: bytes, p: int, limit: int
) -> tuple[list[tuple[int, int, bytes]], int] | None:
    """Split the array opening at ``buf[p]`` when every element is a valid JSON object.

    Args:
        buf: the input.
        p: index of the opening ``[``.
        limit: index where the region to scan ends.

    Returns:
        For each element its start, the newlines in ``buf[p:start]`` and its bytes (one
        UTF-8 JSON object that simdjson accepted), and the index just after the ``]``; or
        None when the array is empty, an element is not an object or is refused, or the
        array does not close before ``limit``: then the caller's scanner decides.
    """
    start = skip_ws(buf, p + 1, limit)
    if start >= limit or buf[start] != 0x7B:
        return None
    parse = parser().parse
    elements: list[tuple[int, int, bytes]] = []
    newlines = buf.count(b"\n", p, start)
    # How the last two elements were joined: the '}', white space, ',', white space and
    # the next element's first bytes, which most arrays repeat (the same first key): a
    # long needle that bytes.find skips through fast, with few false hits inside strings.
    separator, skip = b"", 0
    while True:
        cut = None
        if separator:
            cut = _find_cut(parse, buf, start, limit, separator=separator, skip=skip)
        if cut is None:
            cut = _cut(parse, buf, start, limit)
            if cut is None:
                return None
        data, after = cut
        elements.append((start, newlines, data))
        # Counted while the bytes are still in cache, and only where memchr (the 'in')
        # finds one: bytes.count goes byte by byte, as slow here as the parse.
        if b"\n" in data:
            newlines += data.count(b"\n")
        newlines += buf.count(b"\n", start + len(data), after)
        if buf[after - 1] == 0x5D:
            return elements, after
        end = start + len(data) - 1  # the '}'
        if not separator or buf[end : end + len(separator)] != separator:
            separator = buf[end : min(after + _SEPARATOR_HEAD, limit)]
            skip = after - end
        start = after


def _find_cut(
    parse: Callable[[bytes], object], buf: bytes, start: int, limit: int, *,
    separator: bytes, skip: int,
) -> tuple[bytes, int] | None:
    """Like :func:`_cut`, trying only where ``separator`` occurs (``skip`` bytes to the next)."""
    find = buf.find
    at = find(separator, start, limit)
    for _ in range(_MAX_REFUSED_CUTS):
        if at == -1:
            return None
        data = buf[start : at + 1]
        if _is_object(parse, data):
            return data, at + skip
        at = find(separator, at + 1, limit)
    return None


def _cut(
    parse: Callable[[bytes], object], buf: bytes, start: int, limit: int
) -> tuple[bytes, int] | None:
    """The object element at ``buf[start]`` and the index after its ``,`` (or ``]``)."""
    for refused, cut in enumerate(_OBJECT_END.finditer(buf, start, limit)):
        if refused == _MAX_REFUSED_CUTS:
            return None
        data = buf[start : cut.start() + 1]
        if _is_object(parse, data):
            return data, cut.end()
    return None


def _is_object(parse: Callable[[bytes], object], data: bytes) -> bool:
    try:
        value = parse(data)
    except (ValueError, RuntimeError):
        return False
    return isinstance(value, simdjson.Object)  # the proxy dies here, before the next parse
