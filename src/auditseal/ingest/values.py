"""Values to events: an array yields its elements, an envelope its records, an object itself.

Shared by both input modes of :mod:`auditseal.ingest.records` (a document, and a JSON line
that holds more than one plain object). An array of objects is cut and validated by
simdjson in one pass per element (:func:`auditseal.ingest.fastjson.array_objects`);
anything else goes through the bracket scanner (:mod:`auditseal.ingest.jsonscan`), and
each element through :func:`auditseal.ingest.event.validate_event`.
"""

from __future__ import annotations

from collections.abc import Callable

from auditseal.ingest.event import Record, Rejected, excerpt, validate_event
from auditseal.ingest.fastjson import array_objects
from auditseal.ingest.jsonscan import ENVELOPE_HEAD, array_spans, scan_value, skip_ws

__all__ = ["LineCounter", "value_events"]


def value_events(
    buf: bytes, p: int, limit: int, base: int, line_of: Callable[[int], int]
) -> tuple[list[Record | Rejected], int]:
    """Expand the value opening at ``buf[p]``; return its events and the index after it."""
    spans: list[tuple[int, int]] | None = None
    opening = p  # of the array
    if buf[p] == 0x5B:
        spans, end, elements = _array(buf, p, limit)
        context = "array element {}: "
    elif head := ENVELOPE_HEAD.match(buf, p, limit):
        opening = head.end() - 1
        spans, end, elements = _array(buf, opening, limit)
        end = skip_ws(buf, end, limit)
        context = "records[{}]: "
        if end < limit and buf[end] == 0x7D:
            end += 1
        else:
            spans = None  # "records" is not the only member: an ordinary object
    if spans is None:
        end = scan_value(buf, p, limit)
        return [_event(buf, p, end, base, line_of, context="")], end
    if elements is not None:
        line = line_of(opening)
        return [Record(data, line + lines, base + s) for s, lines, data in elements], end
    return [
        _event(buf, s, e, base, line_of, context=context.format(i))
        for i, (s, e) in enumerate(spans)
    ], end


def _array(
    buf: bytes, p: int, limit: int
) -> tuple[list[tuple[int, int]], int, list[tuple[int, int, bytes]] | None]:
    """Element spans of the array at ``buf[p]``, its end, and the elements if all are valid.

    The elements come as (start, newlines since ``buf[p]``, bytes).
    """
    fast = array_objects(buf, p, limit)
    if fast is not None:
        elements, end = fast
        return [], end, elements  # no spans needed: the elements are the events
    spans, end = array_spans(buf, p, limit)
    return spans, end, None


def _event(
    buf: bytes, s: int, e: int, base: int, line_of: Callable[[int], int], *, context: str
) -> Record | Rejected:
    data = buf[s:e]
    reason = validate_event(data) if data else "empty element (stray comma)"
    if reason is None:
        return Record(data, line_of(s), base + s)
    return Rejected(line_of(s), base + s, context + reason, excerpt(data))


# --- line numbers ----------------------------------------------------------------------------


class LineCounter:
    """Line number of a byte position, counting incrementally from the last question."""

    def __init__(self, buf: bytes) -> None:
        self._buf = buf
        self._pos = 0
        self._line = 1

    def __call__(self, pos: int) -> int:
        if pos >= self._pos:
            self._line += self._buf.count(b"\n", self._pos, pos)
        else:
            self._line -= self._buf.count(b"\n", pos, self._pos)
        self._pos = pos
        return self._line
