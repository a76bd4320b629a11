"""A fast "is this one JSON object?" for the sealing hot path, with simdjson.

Every event is validated (one UTF-8 JSON object, RFC 8259) before it is sealed. orjson
answers by building the whole Python object, about 5 us for a 2 KB Activity Log record;
simdjson (pysimdjson) validates UTF-8 and the grammar without building anything, about
1 us. A ``yes`` from simdjson is final; anything else goes to the caller's orjson path,
which decides and words the reason. So we accept what orjson accepts (orjson also takes
integers beyond 64 bits, which simdjson refuses: those take the slow path).
"""

from __future__ import annotations

import threading

import simdjson

OBJECT = 0
"""One JSON object that is not an Azure Monitor envelope."""
ENVELOPE = 1
"""A ``{"records": [...]}`` envelope: one object whose only member is an array."""
UNDECIDED = 2
"""Not a plain object, or simdjson refused it: ask orjson."""

_BOM = b"\xef\xbb\xbf"
_local = threading.local()  # a simdjson Parser is not safe to share between threads


def classify(data: bytes) -> int:
    """Return OBJECT, ENVELOPE or UNDECIDED for ``data``."""
    if data.startswith(_BOM):
        return UNDECIDED  # simdjson skips a byte-order mark; in an event it is an error
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    try:
        value = parser.parse(data)
    except (ValueError, RuntimeError):
        return UNDECIDED
    if not isinstance(value, simdjson.Object):
        return UNDECIDED
    if len(value) == 1 and isinstance(value.get("records"), simdjson.Array):
        return ENVELOPE
    return OBJECT
