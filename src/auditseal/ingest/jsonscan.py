"""JSON scanning: finding where a JSON object or array starts and ends, as byte spans.

The sealed log keeps every event byte for byte, so :mod:`auditseal.ingest.records` slices
events out of the input instead of re-serializing them. No JSON library reports byte
spans, so this module delimits values with a small scanner that tracks strings, escapes and
bracket nesting. It stays fast by letting ``re`` skip everything that is not a bracket
(whole strings included) in C: Python code runs once per bracket, not once per byte.
An array whose elements are all objects is usually cut by
:func:`auditseal.ingest.fastjson.array_objects` first (one simdjson parse per element, no
Python per bracket); this scanner is the general path, and the one that words errors.

The scanner only finds boundaries; validity is always decided by orjson. Grammar: RFC 8259
(white space §2, strings and escapes §7, UTF-8 §8.1).
"""

from __future__ import annotations

import re

__all__ = [
    "ENVELOPE_HEAD",
    "OPENERS",
    "WS",
    "Incomplete",
    "Malformed",
    "ScanError",
    "array_spans",
    "scan_value",
    "skip_ws",
]

WS = b" \t\r\n"
"""JSON white space (RFC 8259 §2)."""
OPENERS = b"{["
"""The bytes that open an object or an array."""

# A JSON string with no raw newline inside (JSON forbids raw control characters; refusing
# them lets a truncated line fail on its own line instead of swallowing the next one).
_STRING = rb'"[^"\\\n]*+(?:\\[^\n][^"\\\n]*+)*+"'
# Skip to the next bracket outside strings (the "unrolled loop" form, the fastest in
# CPython's re); the second form also stops at commas, to cut array elements. Both stop
# before a '"' that opens an unterminated string.
_SKIP_NESTED = re.compile(rb'[^"\[\]{}]*+(?:' + _STRING + rb'[^"\[\]{}]*+)*+')
_SKIP_ELEMENT = re.compile(rb'[^"\[\]{},]*+(?:' + _STRING + rb'[^"\[\]{},]*+)*+')
_SKIP_WS = re.compile(rb"[ \t\r\n]*+")
ENVELOPE_HEAD = re.compile(rb'\{[ \t\r\n]*+"records"[ \t\r\n]*+:[ \t\r\n]*+\[')
"""Matches the start of an Azure Monitor envelope ``{"records": [`` up to its ``[``."""


class ScanError(Exception):
    """The scanner could not delimit a value (control flow, never escapes ingest).

    Attributes:
        message: human text saying where the value broke off.
        pos: index in the buffer where the problem was found.
    """

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message, self.pos = message, pos


class Incomplete(ScanError):
    """The region ended inside a value: more bytes were needed."""


class Malformed(ScanError):
    """Broken structure: a mismatched bracket, a string cut by a newline."""


def scan_value(buf: bytes, p: int, limit: int) -> int:
    """Return the index just after the object or array opening at ``buf[p]``.

    Args:
        buf: the input.
        p: index of the opening ``{`` or ``[``.
        limit: index where the region to scan ends.

    Raises:
        Incomplete: ``limit`` came before the value closed.
        Malformed: a bracket does not match, or a string is cut by a newline.
    """
    stack = [buf[p] + 2]  # '{'+2 is '}', '['+2 is ']'
    match = _SKIP_NESTED.match
    j = p + 1
    while True:
        m = match(buf, j, limit)
        assert m is not None  # the pattern can match the empty string
        j = m.end()
        if j >= limit:
            raise Incomplete(_inside(stack[-1]), j)
        c = buf[j]
        if c == 0x22:
            raise _string_error(buf, j, limit)
        if c in OPENERS:
            stack.append(c + 2)
        elif c != stack.pop():
            raise Malformed(f"{chr(c)!r} at byte {j} does not close the open bracket", j)
        elif not stack:
            return j + 1
        j += 1


def array_spans(buf: bytes, p: int, limit: int) -> tuple[list[tuple[int, int]], int]:
    """Cut the array opening at ``buf[p]`` into element spans (without white space).

    Args:
        buf: the input.
        p: index of the opening ``[``.
        limit: index where the region to scan ends.

    Returns:
        The (start, end) span of each element, and the index just after the ``]``.

    Raises:
        Incomplete: ``limit`` came before the array closed.
        Malformed: a bracket does not match, or a string is cut by a newline.
    """
    spans: list[tuple[int, int]] = []
    stack: list[int] = []  # closers expected inside the current element
    j = start = skip_ws(buf, p + 1, limit)
    if j < limit and buf[j] == 0x5D:
        return spans, j + 1
    while True:
        m = (_SKIP_NESTED if stack else _SKIP_ELEMENT).match(buf, j, limit)
        assert m is not None  # the pattern can match the empty string
        j = m.end()
        if j >= limit:
            raise Incomplete(_inside(stack[-1] if stack else 0x5D), j)
        c = buf[j]
        if c == 0x22:
            raise _string_error(buf, j, limit)
        if c == 0x2C:  # a comma outside any bracket of the element ends it
            spans.append((start, _rstrip_ws(buf, start, j)))
            j = start = skip_ws(buf, j + 1, limit)
            continue
        if c in OPENERS:
            stack.append(c + 2)
        elif stack:
            if c != stack.pop():
                raise Malformed(f"{chr(c)!r} at byte {j} does not close the open bracket", j)
        elif c == 0x5D:
            spans.append((start, _rstrip_ws(buf, start, j)))
            return spans, j + 1
        else:
            raise Malformed(f"'}}' at byte {j} inside an array", j)
        j += 1


def skip_ws(buf: bytes, p: int, limit: int) -> int:
    """Return the index of the first non-white-space byte at or after ``p`` (or ``limit``)."""
    m = _SKIP_WS.match(buf, p, limit)
    assert m is not None  # the pattern can match the empty string
    return m.end()


def _string_error(buf: bytes, j: int, limit: int) -> ScanError:
    if buf.find(b"\n", j, limit) == -1:
        return Incomplete("inside a string", j)
    return Malformed(f"the string opened at byte {j} is not closed on its line", j)


def _inside(closer: int) -> str:
    return "inside an unclosed object" if closer == 0x7D else "inside an unclosed array"


def _rstrip_ws(buf: bytes, start: int, end: int) -> int:
    while end > start and buf[end - 1] in WS:
        end -= 1
    return end
